#!/usr/bin/env bash
# Build what reaches Mesos agents through the fetcher (nothing kmf-specific is installed on them):
#   .cache/artifacts/kmf-<version>-py<X.Y>-linux-<machine>.tar.gz
#       one top folder of that name: kmf's packages (kmf, kmfwire, kmfio, config, scheduler, executor, mesoslib,
#       localmesos, streams), tools/kafka/versions.env, every runtime dependency installed with
#       `pip install --target`, and KMF_BUNDLE (what interpreter it needs). confluent-kafka and
#       cryptography are binary wheels, hence the Python minor version and platform in the name.
#   .cache/artifacts/kafka-<version>.tar.gz  per runtime assembled in .cache/kafka: `kafka/<version>/`
#       (the same layout as .cache/kafka, so KMF_KAFKA_CACHE=<sandbox>/kafka)
# Each archive gets a `<file>.sha256` beside it, which the scheduler reads instead of hashing again.
# Archives are reproducible (sorted names, fixed owner and mtime, gzip -n): the same inputs give
# the same sha256, so two schedulers built from the same sources serve the same URIs' content.
# Idempotent: stamps of the inputs; a run with nothing changed takes a few hundredths of a second.
# usage: tools/artifacts.sh [PYTHON]   (default: .venv/bin/python)
set -euo pipefail
ROOT="$(cd "$(dirname "$0")/.." && pwd)"
PY="${1:-$ROOT/.venv/bin/python}"
OUT="$ROOT/.cache/artifacts"
mkdir -p "$OUT"
log() { printf '[artifacts] %s\n' "$*" >&2; }
PACKAGES=(kmf kmfwire kmfio config scheduler executor mesoslib localmesos streams)

read -r version tag < <("$PY" - "$ROOT/setup.cfg" <<'PYEOF'
import configparser, platform, sys
cfg = configparser.ConfigParser()
cfg.read(sys.argv[1])
print(cfg["metadata"]["version"], f"py{sys.version_info[0]}.{sys.version_info[1]}-linux-{platform.machine()}")
PYEOF
)
name="kmf-$version-$tag"

# FILE's content becomes TEXT through a new file renamed over it: never written in place, so a
# .cache whose files are hard links of another checkout's (a copy made with cp -al) never gets this
# checkout's digests or stamps into the other's files, nor theirs into ours
put() { printf '%s\n' "$2" > "$1.tmp.$$" && mv -f "$1.tmp.$$" "$1"; }

# reproducible tar.gz of DIR's child NAME into FILE (atomically), with its .sha256 beside it
pack() {
  local dir="$1" member="$2" file="$3" level="$4"
  tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --exclude=__pycache__ \
    -C "$dir" -cf - "$member" | gzip -n "-$level" > "$file.tmp"
  mv "$file.tmp" "$file"
  put "$file.sha256" "$(cd "$(dirname "$file")" && sha256sum "$(basename "$file")")"
}

# --- runtime dependencies (only when setup.cfg's install_requires or the interpreter change) ------
reqs="$("$PY" - "$ROOT/setup.cfg" <<'PYEOF'
import configparser, sys
cfg = configparser.ConfigParser()
cfg.read(sys.argv[1])
print(" ".join(line.strip() for line in cfg["options"]["install_requires"].splitlines()
               if line.strip() and not line.strip().startswith("#")))
PYEOF
)"
deps="$OUT/.deps-$tag"
stamp_deps="$(printf '%s\n%s\n' "$reqs" "$("$PY" -VV)" | cat - "$ROOT/tools/http-parser-wheel.sh" | sha256sum | cut -c1-16)"
if [ "$(cat "$deps/.kmf-stamp" 2>/dev/null)" != "$stamp_deps" ]; then
  log "installing the runtime dependencies for $tag into $deps"
  wheel="$(bash "$ROOT/tools/http-parser-wheel.sh" "$PY" "$ROOT/.cache/wheels")"
  rm -rf "$deps" && mkdir -p "$deps"
  # shellcheck disable=SC2086 - one requirement per word
  "$PY" -m pip install -q --disable-pip-version-check --no-compile --target "$deps" "$wheel" $reqs
  rm -rf "$deps/bin"  # console scripts with this machine's interpreter in their shebang
  put "$deps/.kmf-stamp" "$stamp_deps"
fi

# --- the bundle (when kmf's sources, the dependencies or this script change) ------------------------
stamp_bundle="$( (cd "$ROOT" && find "${PACKAGES[@]}" tools/kafka/versions.env -type f \
                    ! -path '*__pycache__*' ! -name '*.pyc' -print0 | sort -z | xargs -0 sha256sum;
                  echo "$stamp_deps"; cat "$0") | sha256sum | cut -c1-16)"
bundle="$OUT/$name.tar.gz"
if [ "$(cat "$OUT/.$name.stamp" 2>/dev/null)" != "$stamp_bundle" ] || [ ! -f "$bundle" ]; then
  started=$(date +%s.%N)
  stage="$OUT/.stage"
  rm -rf "$stage" && mkdir -p "$stage/$name/tools/kafka"
  cp -al "$deps/." "$stage/$name/"  # hard links: no copy of tens of MB
  rm -f "$stage/$name/.kmf-stamp"
  (cd "$ROOT" && cp -r "${PACKAGES[@]}" "$stage/$name/" && cp tools/kafka/versions.env "$stage/$name/tools/kafka/")
  "$PY" - "$stage/$name/KMF_BUNDLE" "$name" "$version" <<'PYEOF'
import json, platform, sys
path, name, version = sys.argv[1:]
json.dump({"name": name, "version": version, "python": f"{sys.version_info[0]}.{sys.version_info[1]}",
           "platform": f"linux-{platform.machine()}"}, open(path, "w"), indent=1)
PYEOF
  pack "$stage" "$name" "$bundle" 6
  rm -rf "$stage"
  put "$OUT/.$name.stamp" "$stamp_bundle"
  log "built $bundle ($(du -m "$bundle" | cut -f1) MB) in $(printf '%.1f' "$(echo "$(date +%s.%N) - $started" | bc)")s"
fi

# --- Kafka runtimes ---------------------------------------------------------------------------------
for home in "$ROOT"/.cache/kafka/[0-9]*.[0-9]*.[0-9]*; do
  [ -f "$home/RUNTIME" ] || continue
  v="$(basename "$home")"
  file="$OUT/kafka-$v.tar.gz"
  stamp_kafka="$( (cat "$ROOT/.cache/kafka/.stamp" 2>/dev/null; echo "$v"; cat "$0") | sha256sum | cut -c1-16)"
  if [ "$(cat "$OUT/.kafka-$v.stamp" 2>/dev/null)" != "$stamp_kafka" ] || [ ! -f "$file" ]; then
    started=$(date +%s.%N)
    stage="$OUT/.stage-kafka"
    rm -rf "$stage" && mkdir -p "$stage/kafka"
    ln -s "$home" "$stage/kafka/$v"
    # jars are zip files already: gzip -1 loses little size and saves seconds
    tar --sort=name --mtime=@0 --owner=0 --group=0 --numeric-owner --dereference \
      -C "$stage" -cf - "kafka/$v" | gzip -n -1 > "$file.tmp"
    mv "$file.tmp" "$file"
    put "$OUT/kafka-$v.tar.gz.sha256" "$(cd "$OUT" && sha256sum "kafka-$v.tar.gz")"
    rm -rf "$stage"
    put "$OUT/.kafka-$v.stamp" "$stamp_kafka"
    log "built $file ($(du -m "$file" | cut -f1) MB) in $(printf '%.1f' "$(echo "$(date +%s.%N) - $started" | bc)")s"
  fi
done

# --- the demo's order pipeline (streams/orders, Kafka Streams): a jar its app fetches by URI ------
# Compiled against the newest 4.x runtime's jars (the app runs on its service's runtime, which
# puts Kafka's libraries after the fetched jar); a reproducible zip (fixed names order and times).
# shellcheck disable=SC1091 - plain KEY=VALUE lines
. "$ROOT/tools/kafka/versions.env"
libs="$ROOT/.cache/kafka/$KAFKA4_VERSION/libs"
jar="$OUT/kmf-orders.jar"
if [ -d "$libs" ]; then
  stamp_jar="$( (cat "$ROOT"/streams/orders/*.java; echo "$KAFKA4_VERSION"; javac -version 2>&1; cat "$0") \
                | sha256sum | cut -c1-16)"
  if [ "$(cat "$OUT/.kmf-orders.stamp" 2>/dev/null)" != "$stamp_jar" ] || [ ! -f "$jar" ]; then
    stage="$OUT/.stage-orders"
    rm -rf "$stage" && mkdir -p "$stage"
    javac --release 17 -nowarn -d "$stage" -cp "$libs/*" "$ROOT"/streams/orders/*.java
    "$PY" - "$stage" "$jar.tmp" <<'PYEOF'
import os, sys, zipfile
stage, out = sys.argv[1:]
names = sorted(os.path.relpath(os.path.join(d, f), stage) for d, _, fs in os.walk(stage) for f in fs)
with zipfile.ZipFile(out, "w", zipfile.ZIP_DEFLATED) as z:
    z.writestr(zipfile.ZipInfo("META-INF/MANIFEST.MF", (1980, 1, 1, 0, 0, 0)), "Manifest-Version: 1.0\r\n\r\n")
    for name in names:
        info = zipfile.ZipInfo(name, (1980, 1, 1, 0, 0, 0))
        info.compress_type = zipfile.ZIP_DEFLATED
        z.writestr(info, open(os.path.join(stage, name), "rb").read())
PYEOF
    mv "$jar.tmp" "$jar"
    rm -rf "$stage"
    put "$OUT/.kmf-orders.stamp" "$stamp_jar"
    log "built $jar"
  fi
fi
