#!/usr/bin/env bash
# Build http-parser 0.9.0 (a pymesos dependency) as a pure-Python wheel into WHEEL_DIR, once.
# Its C extension does not compile on Python 3.11; its pure-Python parser is complete, so the sdist
# is built with the extension switched off. The .venv and the kmf bundle both install this wheel.
# usage: http-parser-wheel.sh PYTHON WHEEL_DIR   (prints the wheel's path)
set -euo pipefail
[ $# -eq 2 ] || { echo "usage: $0 PYTHON WHEEL_DIR" >&2; exit 2; }
PY="$1"; OUT="$2"
mkdir -p "$OUT"
wheel="$(ls "$OUT"/http_parser-0.9.0-*.whl 2>/dev/null | head -n1 || true)"
if [ -z "$wheel" ]; then
  tmp="$(mktemp -d)"
  trap 'rm -rf "$tmp"' EXIT
  "$PY" -m pip download -q --no-deps --no-binary :all: http-parser==0.9.0 -d "$tmp"
  tar xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
  sed -i 's/run_setup(not IS_PYPY)/run_setup(False)/' "$tmp"/http-parser-0.9.0/setup.py
  "$PY" -m pip wheel -q --no-deps "$tmp"/http-parser-0.9.0 -w "$OUT"
  wheel="$(ls "$OUT"/http_parser-0.9.0-*.whl | head -n1)"
fi
echo "$wheel"
