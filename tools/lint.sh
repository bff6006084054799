#!/usr/bin/env bash
# The static checks that `make test` runs before pytest, all three every time:
#   import-linter  the import contracts in setup.cfg (layers; what pure parts may not import)
#   ruff           defects (pyflakes and a few more; pyproject.toml), not formatting
#   mypy           types (setup.cfg: strict for config, kmfwire, mesoslib, executor.policy, scheduler.core)
# Prints each one's result and time; exits non-zero naming the ones that failed.
# usage: tools/lint.sh   (the tools come from .venv, which `make setup` builds)
set -uo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
cd "$ROOT"
BIN="$ROOT/.venv/bin"
failed=()

check() {
  local name="$1"; shift
  local started ms
  started=$(date +%s%N)
  if "$@"; then
    ms=$(( ($(date +%s%N) - started) / 1000000 ))
    printf '[lint] %s: ok (%d.%01d s)\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) >&2
  else
    ms=$(( ($(date +%s%N) - started) / 1000000 ))
    printf '[lint] %s: FAILED (%d.%01d s)\n' "$name" $((ms / 1000)) $((ms % 1000 / 100)) >&2
    failed+=("$name")
  fi
}

check import-linter "$BIN/lint-imports" --no-logo --no-cache
check ruff "$BIN/ruff" check --no-cache --quiet .
check mypy "$BIN/mypy"

if [ "${#failed[@]}" -gt 0 ]; then
  printf '[lint] failed: %s\n' "${failed[*]}" >&2
  exit 1
fi
printf '[lint] all passed: import-linter, ruff, mypy\n' >&2
