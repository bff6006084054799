"""The operator's side of an e2e test: the `kmf` CLI run as a process against a scheduler's API,
and a small stream app that only says it is ready."""
from __future__ import annotations

import subprocess
import sys

SLEEPER = {"name": "sleeper", "count": 1, "cpus": 0.1, "mem_mb": 128, "runtime": "command",
           "command": ["sh", "-c", "echo 'kmf: ready'; exec sleep 3600"]}


def kmf(api: str, *args: str, token_file: str | None = None, timeout: float = 60) -> subprocess.CompletedProcess:
    extra = ["--token-file", token_file] if token_file else []
    return subprocess.run([sys.executable, "-m", "kmf", *args, "--api", api, *extra],
                          capture_output=True, text=True, timeout=timeout)
