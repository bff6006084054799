"""The bundle's interpreter check: an executor or scheduler started by a Python the bundle's binary
wheels were not built for stops at once and says which Python it needs."""
from __future__ import annotations

import json
import platform
import subprocess
import sys
from pathlib import Path

import pytest

from kmfwire import artifacts

pytestmark = pytest.mark.timeout(60)


def marker(root: Path, python: str) -> Path:
    (root / artifacts.MARKER).write_text(json.dumps({"name": "kmf-0.1.0-py9.9-linux-x86_64", "python": python,
                                                      "platform": f"linux-{platform.machine()}"}))
    return root


def test_a_matching_interpreter_and_a_checkout_pass(tmp_path):
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    assert artifacts.check_interpreter(marker(tmp_path, here)) is None
    assert artifacts.check_interpreter(tmp_path / "no-marker-here") is None


def test_another_python_is_told_which_one_the_bundle_needs(tmp_path):
    why = artifacts.check_interpreter(marker(tmp_path, "9.9"))
    assert why and "kmf-0.1.0-py9.9-linux-x86_64 needs Python 9.9" in why and sys.executable in why


def test_names_follow_the_interpreter():
    assert artifacts.platform_tag((3, 11), "x86_64") == "py3.11-linux-x86_64"
    assert artifacts.bundle_file("py3.11-linux-x86_64") == "kmf-0.1.0-py3.11-linux-x86_64.tar.gz"
    assert artifacts.archive_folder("http://h:1/v1/artifacts/ab/kmf-0.1.0-py3.11-linux-x86_64.tar.gz") == \
        "kmf-0.1.0-py3.11-linux-x86_64"


def test_python_m_executor_from_a_mismatched_bundle_exits_with_the_reason(tmp_path):
    root = Path(artifacts.__file__).resolve().parents[1]
    bundle = tmp_path / "kmf-0.1.0-py9.9-linux-x86_64"
    bundle.mkdir()
    for pkg in ("kmfwire", "executor"):
        (bundle / pkg).symlink_to(root / pkg)
    marker(bundle, "9.9")
    # the symlinked package resolves to the checkout, so point the check at the bundle via a copy
    (bundle / "kmfwire").unlink()
    (bundle / "kmfwire").mkdir()
    for f in ("__init__.py", "artifacts.py"):
        (bundle / "kmfwire" / f).write_text((root / "kmfwire" / f).read_text())
    done = subprocess.run([sys.executable, "-m", "executor"], cwd=tmp_path, capture_output=True, text=True,
                          env={"PYTHONPATH": str(bundle), "PATH": "/usr/bin:/bin"}, timeout=30)
    assert done.returncode == 1
    assert "kmf executor: the kmf bundle kmf-0.1.0-py9.9-linux-x86_64 needs Python 9.9" in done.stderr
