"""Shared pytest set-up: loads every fixture module named tests/helpers/fixtures_*.py."""
from pathlib import Path

pytest_plugins = sorted(
    f"tests.helpers.{path.stem}"
    for path in (Path(__file__).parent / "helpers").glob("fixtures_*.py")
)

# Hypothesis' per-example deadline is a timed assertion: on a loaded 2-core CI machine a
# scenario that builds a whole simulated cluster per example can pass 200 ms and fail a correct
# test. Speed lives in benchmarks/, so no example has a deadline here.
from hypothesis import settings  # noqa: E402

settings.register_profile("kmf", deadline=None)
settings.load_profile("kmf")
