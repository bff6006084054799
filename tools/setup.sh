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
# the demo's Kafka Streams order pipeline (streams/orders) is compiled here (tools/artifacts.sh)
command -v javac >/dev/null || need+=(openjdk-17-jdk-headless)
command -v kcat >/dev/null || need+=(kcat)
# the chaos suite's network partitions are nft rules (tests/helpers/netfaults.py)
{ command -v nft || [ -x /usr/sbin/nft ]; } >/dev/null || need+=(nftables)
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
stamp_py="$(cat "$ROOT/setup.cfg" "$ROOT/tools/setup.sh" "$ROOT/tools/http-parser-wheel.sh" | sha256sum | cut -c1-16)"
if [ ! -x "$VENV/bin/python" ] || [ "$(cat "$VENV/.kmf-stamp" 2>/dev/null)" != "$stamp_py" ]; then
  log "building $VENV with $PYTHON"
  [ -x "$VENV/bin/python" ] || "$PYTHON" -m venv "$VENV"
  "$VENV/bin/pip" install -q --upgrade pip setuptools wheel
  if ! "$VENV/bin/python" -c 'import http_parser.http' 2>/dev/null; then
    # pymesos needs http-parser 0.9.0, built as a pure-Python wheel (its C extension does not
    # compile on Python 3.11); the kmf bundle (tools/artifacts.sh) installs the same wheel
    "$VENV/bin/pip" install -q "$(bash "$ROOT/tools/http-parser-wheel.sh" "$VENV/bin/python" "$CACHE/wheels")"
  fi
  "$VENV/bin/pip" install -q -e "$ROOT[test,lint]"  # lint: tools/lint.sh's import-linter, ruff, mypy
  "$VENV/bin/python" -c 'from http_parser.http import HttpParser; import pymesos, kazoo, confluent_kafka'
  echo "$stamp_py" > "$VENV/.kmf-stamp"
fi

# --- Kafka runtimes from Maven Central -----------------------------------------------------
if [ -f "$ROOT/tools/kafka/assemble.sh" ]; then
  bash "$ROOT/tools/kafka/assemble.sh" "$CACHE/kafka"
fi
# --- What agents fetch: the kmf bundle and the Kafka runtimes as archives (.cache/artifacts) -------
bash "$ROOT/tools/artifacts.sh" "$VENV/bin/python"
# --- Apache Mesos (a test dependency like ZooKeeper, when a build is at hand) ----------------
# The shared build (../shared/mesos beside this checkout, or KMF_MESOS_TARBALL) is extracted into
# .cache/mesos with its Debian runtime libraries; a user's own install is named by KMF_MESOS_HOME.
MESOS_TGZ="${KMF_MESOS_TARBALL:-$(ls "$ROOT"/../shared/mesos/mesos-*-debian12-amd64.tar.gz 2>/dev/null | head -n1 || true)}"
if [ -z "${KMF_MESOS_HOME:-}" ] && [ -n "$MESOS_TGZ" ] && [ -f "$MESOS_TGZ" ]; then
  stamp_mesos="$(stat -c '%s %Y' "$MESOS_TGZ" | sha256sum | cut -c1-16)"
  if [ "$(cat "$CACHE/mesos/.kmf-stamp" 2>/dev/null)" != "$stamp_mesos" ]; then
    log "extracting Apache Mesos from $MESOS_TGZ into $CACHE/mesos"
    rm -rf "$CACHE/mesos.new" && mkdir -p "$CACHE/mesos.new"
    tar xzf "$MESOS_TGZ" -C "$CACHE/mesos.new"
    rm -rf "$CACHE/mesos" && mv "$CACHE/mesos.new/mesos" "$CACHE/mesos" && rm -rf "$CACHE/mesos.new"
    echo "$stamp_mesos" > "$CACHE/mesos/.kmf-stamp"
  fi
  missing=()
  for pkg in libapr1 libaprutil1 libarchive13 libcurl4 libgrpc++1.51 libgrpc29 libprotobuf32 libsasl2-2 \
             libsvn1 libzookeeper-mt2 zlib1g; do
    dpkg -s "$pkg" >/dev/null 2>&1 || missing+=("$pkg")
  done
  if [ "${#missing[@]}" -gt 0 ]; then
    log "installing Apache Mesos' runtime libraries: ${missing[*]}"
    SUDO=""; [ "$(id -u)" = 0 ] || SUDO="sudo"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  fi
  "$CACHE/mesos/sbin/mesos-master" --version >/dev/null || { log "the Apache Mesos build does not run here"; exit 1; }
fi
log "ready: $VENV ($("$VENV/bin/python" --version))"
