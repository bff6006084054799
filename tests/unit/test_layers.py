"""The import contracts bite: setup.cfg holds the expected ones, `make test` runs them, and a copy
of the tree with a forbidden import injected fails `lint-imports`, naming the contract it breaks."""
from __future__ import annotations

import configparser
import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

pytestmark = pytest.mark.timeout(120)

ROOT = Path(__file__).resolve().parents[2]
PACKAGES = ("kmf", "scheduler", "localmesos", "executor", "streams", "config", "kmfwire", "mesoslib", "kmfio")
LINT_IMPORTS = Path(sys.executable).parent / "lint-imports"

LAYERS = "Layers: kmf"
AGENTS = "What runs on agents"
PURE = "Pure parts"
PURE_FORBIDDEN = {"pymesos", "kazoo", "confluent_kafka", "prometheus_client", "http", "socket", "threading",
                  "subprocess"}


def contracts(path: Path = ROOT / "setup.cfg") -> dict[str, configparser.SectionProxy]:
    cfg = configparser.ConfigParser()
    cfg.read(path)
    return {name.split(":", 2)[2]: cfg[name] for name in cfg.sections() if name.startswith("importlinter:contract:")}


def lines(value: str) -> list[str]:
    return [line.strip() for line in value.splitlines() if line.strip() and not line.strip().startswith("#")]


def test_the_config_holds_the_expected_contracts():
    cfg = configparser.ConfigParser()
    cfg.read(ROOT / "setup.cfg")
    assert set(lines(cfg["importlinter"]["root_packages"])) == set(PACKAGES)
    assert cfg["importlinter"].getboolean("include_external_packages")  # else externals are not seen
    found = contracts()
    assert set(found) == {"layers", "agents-without-config", "pure-cores"}

    layers = found["layers"]
    assert layers["type"] == "layers"
    assert [[p.strip() for p in layer.split("|")] for layer in lines(layers["layers"])] == [
        ["kmf"], ["scheduler", "localmesos", "executor", "streams"], ["config", "mesoslib", "kmfio"], ["kmfwire"]]
    assert lines(layers.get("ignore_imports", "")) == []  # no exception to the layers

    agents = found["agents-without-config"]
    assert agents["type"] == "forbidden"
    assert set(lines(agents["source_modules"])) == {"executor", "localmesos", "streams"}
    assert lines(agents["forbidden_modules"]) == ["config"]

    pure = found["pure-cores"]
    assert pure["type"] == "forbidden"
    assert set(lines(pure["source_modules"])) == {"scheduler.core", "executor.policy", "config", "kmfwire", "mesoslib"}
    assert set(lines(pure["forbidden_modules"])) == PURE_FORBIDDEN


def test_make_test_runs_the_static_checks_before_pytest():
    make = (ROOT / "Makefile").read_text()
    recipe = make.split("\ntest: setup\n", 1)[1].split("\n\n", 1)[0]
    assert recipe.index("bash tools/lint.sh") < recipe.index("-m pytest")
    lint = (ROOT / "tools" / "lint.sh").read_text()
    for tool in ("lint-imports", "ruff", "mypy"):
        assert f'"$BIN/{tool}"' in lint


@pytest.fixture(scope="module")
def tree(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A copy of the packages and setup.cfg that `lint-imports` can check by itself."""
    root = tmp_path_factory.mktemp("tree")
    for pkg in PACKAGES:
        shutil.copytree(ROOT / pkg, root / pkg, ignore=shutil.ignore_patterns("__pycache__", "*.pyc", "web"))
    shutil.copy(ROOT / "setup.cfg", root / "setup.cfg")
    return root


def lint_imports(root: Path) -> subprocess.CompletedProcess[str]:
    # the copy comes first on the path, before the editable install's finder
    env = {**os.environ, "PYTHONPATH": str(root)}
    return subprocess.run([str(LINT_IMPORTS), "--no-logo", "--no-cache", "--config", "setup.cfg"], cwd=root,
                          env=env, capture_output=True, text=True, timeout=60)


def test_the_copied_tree_keeps_every_contract(tree):
    done = lint_imports(tree)
    assert done.returncode == 0, done.stdout + done.stderr
    assert "3 kept, 0 broken" in done.stdout
    assert {status(done.stdout, c) for c in (LAYERS, AGENTS, PURE)} == {"KEPT"}


@pytest.mark.parametrize("module, statement, contract", [
    ("scheduler/core/placement.py", "import kazoo", PURE),
    ("scheduler/core/pods.py", "import socket", PURE),
    ("kmfwire/taskdata.py", "from http import client", PURE),
    ("config/models.py", "import threading", PURE),
    ("mesoslib/resources.py", "import subprocess", PURE),
    ("config/rules.py", "import scheduler.core.state", LAYERS),
    ("kmfwire/cluster_id.py", "import executor.runtime.broker_config", LAYERS),
    ("scheduler/main.py", "from executor.runtime import broker_config", LAYERS),
    ("executor/workloads.py", "import kmf.cli", LAYERS),
    ("scheduler/__main__.py", "import kmf.cli", LAYERS),  # `python -m scheduler` runs scheduler.cli
    ("localmesos/procs.py", "import config", AGENTS),
])
def test_a_forbidden_import_breaks_its_contract(tree, module, statement, contract):
    path = tree / module
    original = path.read_text()
    path.write_text(original + f"\n{statement}  # injected by test_layers\n")
    try:
        done = lint_imports(tree)
    finally:
        path.write_text(original)
    out = done.stdout + done.stderr
    assert done.returncode != 0, out
    assert status(out, contract) == "BROKEN", out
    assert module.replace("/", ".").removesuffix(".py") in out  # the report names the importer


def status(report: str, contract: str) -> str:
    """KEPT or BROKEN: what the report says after the contract's name (which it wraps over lines)."""
    full = next(c["name"] for c in contracts().values() if c["name"].startswith(contract))
    flat, name = " ".join(report.split()), " ".join(full.split())
    assert name in flat, f"{name!r} not in the report"
    return flat.split(name, 1)[1].split()[0]
