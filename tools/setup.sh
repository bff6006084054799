#!/usr/bin/env bash
# One-command set-up for kmf: system packages, .venv with every Python dependency, Kafka runtimes.
# Idempotent: each stage keeps a stamp of its inputs and is skipped when nothing changed.
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
VENV="$ROOT/.venv"
CACHE="$ROOT/.cache"
mkdir -p "$CACHE"
log() { printf '[setup] %s\n' "$*" >&2; }

# --- system packages (Debian) --------------------------------------------------------------
need=()
[ -f /usr/share/java/zookeeper.jar ] || need+=(zookeeper)
command -v java >/dev/null && java -version 2>&1 | grep -qE 'version "(1[7-9]|2[0-9])' || need+=(openjdk-17-jre-headless)
command -v mvn >/dev/null || need+=(maven)
command -v kcat >/dev/null || need+=(kcat)
# the web pages (localmesos' UI, kmf's page) are tested in headless Chromium
command -v chromium >/dev/null || need+=(chromium)
command -v python3.11 >/dev/null || need+=(python3.11 python3.11-venv)
if [ "${#need[@]}" -gt 0 ]; then
  log "installing Debian packages: ${need[*]}"
  SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${need[@]}" >/dev/null
fi

# --- Python environment --------------------------------------------------------------------
PYTHON="${KMF_PYTHON:-$(command -v python3.11)}"
stamp_py="$(cat "$ROOT/setup.cfg" "$ROOT/tools/setup.sh" | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.kmf-stamp" 2>/dev/null)" != "$stamp_py" ]; then
  log "building $VENV with $PYTHON"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
  if ! "$VENV/bin/python" -c 'import http_parser.http' 2>/dev/null; then
    # pymesos needs http-parser 0.9.0, whose C extension does not build on Python 3.11; its
    # pure-Python parser is complete, so build the sdist with the extension switched off.
    tmp="$(mktemp -d)"
    "$VENV/bin/pip" download -q --no-deps --no-binary :all: http-parser==0.9.0 -d "$tmp"
    tar xzf "$tmp"/http-parser-0.9.0.tar.gz -C "$tmp"
    sed -i 's/run_setup(not IS_PYPY)/run_setup(False)/' "$tmp"/http-parser-0.9.0/setup.py
    "$VENV/bin/pip" install -q "$tmp"/http-parser-0.9.0
    rm -rf "$tmp"
  fi
  "$VENV/bin/pip" install -q -e "$ROOT[test]"
  "$VENV/bin/python" -c 'from http_parser.http import HttpParser; import pymesos, kazoo, confluent_kafka'
  echo "$stamp_py" > "$VENV/.kmf-stamp"
fi

# --- Kafka runtimes from Maven Central -----------------------------------------------------
if [ -f "$ROOT/tools/kafka/assemble.sh" ]; then
  bash "$ROOT/tools/kafka/assemble.sh" "$CACHE/kafka"
fi
log "ready: $VENV ($("$VENV/bin/python" --version))"
