"""`kmf config validate|show` as a user runs them."""
from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def kmf(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "kmf", *args], capture_output=True, text=True, timeout=60,
                          cwd=ROOT)


def test_validate_the_demo_config():
    out = kmf("config", "validate", "config/local.yaml")
    assert out.returncode == 0 and "OK: service kafka, 3 Kafka 4.3.1 brokers (kraft), wordcount×1" in out.stdout


def test_validate_a_broken_file_exits_2_naming_field_and_line(tmp_path):
    bad = tmp_path / "bad.yaml"
    bad.write_text("name: kafka\nmesos: {master: 'zk://h:1/m'}\nzookeeper: {connect: 'h:1'}\n"
                   "kafka:\n  brokers: 0\n  heap_mb: 9999\n")
    out = kmf("config", "validate", str(bad))
    assert out.returncode == 2
    assert f"{bad}:5: kafka.brokers: must be from 1 to 10000, got 0" in out.stderr
    assert f"{bad}:6: kafka.heap_mb: must be less than mem_mb (2048), got 9999" in out.stderr


def test_show_prints_every_default():
    out = kmf("config", "show", "config/local.yaml", "--json")
    doc = json.loads(out.stdout)
    assert doc["policies"]["deploy_strategy"] == "serial" and doc["kafka"]["controllers"] == "combined"
