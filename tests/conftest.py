"""Shared pytest set-up: loads every fixture module named tests/helpers/fixtures_*.py."""
from pathlib import Path

pytest_plugins = sorted(
    f"tests.helpers.{path.stem}"
    for path in (Path(__file__).parent / "helpers").glob("fixtures_*.py")
)
