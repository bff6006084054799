#!/usr/bin/env bash
# Assemble the Kafka runtimes from Maven Central into CACHE_DIR (see docs: kafka-runtime.md):
#   CACHE_DIR/<KAFKA4_VERSION>/libs/*.jar   broker (KRaft) + kafka-tools + streams examples + log4j2
#   CACHE_DIR/<KAFKA4_VERSION>/config/log4j2.properties
#   CACHE_DIR/<KAFKA3_VERSION>/libs/*.jar   broker (ZooKeeper mode or KRaft) + reload4j
#   CACHE_DIR/<KAFKA3_VERSION>/config/log4j.properties
#   CACHE_DIR/<KAFKA4_PREVIOUS_VERSION>/...     an older 4.x (upgrades are rolled from it), like 4.x
#   CACHE_DIR/<VERSION>/agents/jmx_prometheus_javaagent.jar   Prometheus' JMX exporter agent, in every
#                                           runtime (not on the classpath: the broker loads it with -javaagent)
#   CACHE_DIR/m2/                           Maven's local repository (kept, so a rebuild is offline)
# Each libs/ folder holds one Kafka version and one SLF4J binding: `java -cp 'libs/*' kafka.Kafka ...`.
# Idempotent: a stamp of the inputs (versions.env, poms, logging configs, this script) is kept in
# CACHE_DIR/.stamp; when it matches and every folder is there, nothing runs.
set -euo pipefail
HERE="$(cd "$(dirname "$0")" && pwd)"
[ $# -eq 1 ] || { echo "usage: $0 CACHE_DIR" >&2; exit 2; }
mkdir -p "$1"
CACHE="$(cd "$1" && pwd)"
log() { printf '[kafka] %s\n' "$*" >&2; }

# shellcheck source=versions.env
. "$HERE/versions.env"
for var in KAFKA4_VERSION KAFKA3_VERSION LOG4J2_VERSION SLF4J_VERSION RELOAD4J_VERSION DEPENDENCY_PLUGIN_VERSION JMX_EXPORTER_VERSION; do
  [ -n "${!var:-}" ] || { echo "$HERE/versions.env: $var is not set" >&2; exit 2; }
done

inputs=("$HERE/versions.env" "$HERE/pom-kafka4.xml" "$HERE/pom-kafka3.xml" \
        "$HERE/log4j2.properties" "$HERE/log4j.properties" "$HERE/assemble.sh")
stamp="$(cat "${inputs[@]}" | sha256sum | cut -c1-16)"
complete() {
  [ "$(cat "$CACHE/.stamp" 2>/dev/null)" = "$stamp" ] &&
    [ -f "$CACHE/$KAFKA4_VERSION/libs/kafka_2.13-$KAFKA4_VERSION.jar" ] &&
    [ -f "$CACHE/$KAFKA3_VERSION/libs/kafka_2.13-$KAFKA3_VERSION.jar" ] &&
    [ -f "$CACHE/$KAFKA4_VERSION/agents/jmx_prometheus_javaagent.jar" ] &&
    [ -f "$CACHE/$KAFKA3_VERSION/agents/jmx_prometheus_javaagent.jar" ] &&
    { [ -z "${KAFKA4_PREVIOUS_VERSION:-}" ] || [ -f "$CACHE/$KAFKA4_PREVIOUS_VERSION/agents/jmx_prometheus_javaagent.jar" ]; }
}
complete && exit 0

command -v mvn >/dev/null || { echo "assemble.sh: mvn not found (tools/setup.sh installs maven)" >&2; exit 1; }
# One assembly at a time (two setups started together would otherwise race on the same folders).
exec 9>"$CACHE/.lock"
flock 9
complete && exit 0

M2="$CACHE/m2"
started=$(date +%s)
before=$(du -sm "$M2" 2>/dev/null | cut -f1 || echo 0)

# assemble VERSION POM LOGCONFIG REQUIRED_JAR... : resolve POM's runtime closure into CACHE/VERSION.
assemble() {
  local version="$1" pom="$2" logconfig="$3"; shift 3
  local extra=()
  if [ "$version" = "${KAFKA4_PREVIOUS_VERSION:-}" ]; then extra=(-DnoExamples); fi
  local tmp="$CACHE/.tmp-$version"
  log "assembling Kafka $version from Maven Central into $CACHE/$version"
  rm -rf "$tmp"
  mkdir -p "$tmp/libs" "$tmp/config"
  mvn -B -q -f "$pom" -Dmaven.repo.local="$M2" \
    -Dkafka.version="$version" -Dlog4j2.version="$LOG4J2_VERSION" \
    -Dslf4j.version="$SLF4J_VERSION" -Dreload4j.version="$RELOAD4J_VERSION" "${extra[@]}" \
    "org.apache.maven.plugins:maven-dependency-plugin:$DEPENDENCY_PLUGIN_VERSION:copy-dependencies" \
    -DincludeScope=runtime -DoutputDirectory="$tmp/libs" > "$tmp/maven.log" 2>&1 ||
    { cat "$tmp/maven.log" >&2; echo "assemble.sh: Maven failed for Kafka $version (log above)" >&2; exit 1; }
  # the exporter agent travels with the runtime (same archive, same fetch) but stays off libs/: a
  # jar on the broker's classpath is a jar Kafka loads, and the agent is a JVM option of its own
  mvn -B -q -Dmaven.repo.local="$M2" \
    "org.apache.maven.plugins:maven-dependency-plugin:$DEPENDENCY_PLUGIN_VERSION:copy" \
    -Dartifact="io.prometheus.jmx:jmx_prometheus_javaagent:$JMX_EXPORTER_VERSION" -Dmdep.stripVersion=true \
    -DoutputDirectory="$tmp/agents" >> "$tmp/maven.log" 2>&1 ||
    { cat "$tmp/maven.log" >&2; echo "assemble.sh: Maven failed for the JMX exporter $JMX_EXPORTER_VERSION (log above)" >&2; exit 1; }
  [ -f "$tmp/agents/jmx_prometheus_javaagent.jar" ] ||
    { echo "assemble.sh: jmx_prometheus_javaagent.jar missing from $tmp/agents after Maven" >&2; exit 1; }
  cp "$HERE/$logconfig" "$tmp/config/$logconfig"
  local jar
  for jar in "$@"; do
    [ -f "$tmp/libs/$jar" ] || { echo "assemble.sh: $jar missing from $tmp/libs after Maven" >&2; exit 1; }
  done
  # Exactly one SLF4J binding, and no Kafka module of another version.
  local bindings
  bindings=$(cd "$tmp/libs" && ls | grep -cE '^(slf4j-reload4j|slf4j-log4j12|slf4j-simple|slf4j-jdk14|log4j-slf4j-impl|log4j-slf4j2-impl|logback-classic)-' || true)
  [ "$bindings" = 1 ] || { echo "assemble.sh: $tmp/libs has $bindings SLF4J bindings, want 1" >&2; exit 1; }
  if (cd "$tmp/libs" && ls | grep -E '^(kafka|connect)[-_].*\.jar$' | grep -v -- "-$version\.jar$"); then
    echo "assemble.sh: $tmp/libs mixes Kafka versions (listed above)" >&2; exit 1
  fi
  printf 'version=%s\njmx_exporter=%s\n' "$version" "$JMX_EXPORTER_VERSION" > "$tmp/RUNTIME"
  mv -f "$tmp/maven.log" "$CACHE/maven-$version.log"  # a new file, as the stamp below
  rm -rf "${CACHE:?}/$version"
  mv "$tmp" "$CACHE/$version"
}

assemble "$KAFKA4_VERSION" "$HERE/pom-kafka4.xml" log4j2.properties \
  "kafka_2.13-$KAFKA4_VERSION.jar" "kafka-tools-$KAFKA4_VERSION.jar" \
  "kafka-streams-examples-$KAFKA4_VERSION.jar" "log4j-slf4j-impl-$LOG4J2_VERSION.jar"
assemble "$KAFKA3_VERSION" "$HERE/pom-kafka3.xml" log4j.properties \
  "kafka_2.13-$KAFKA3_VERSION.jar" "slf4j-reload4j-$SLF4J_VERSION.jar" "reload4j-$RELOAD4J_VERSION.jar"
if [ -n "${KAFKA4_PREVIOUS_VERSION:-}" ]; then  # the older 4.x that upgrades are rolled from
  assemble "$KAFKA4_PREVIOUS_VERSION" "$HERE/pom-kafka4.xml" log4j2.properties \
    "kafka_2.13-$KAFKA4_PREVIOUS_VERSION.jar" "kafka-tools-$KAFKA4_PREVIOUS_VERSION.jar" \
    "log4j-slf4j-impl-$LOG4J2_VERSION.jar"
fi

# a new file renamed over the stamp, never written in place: a .cache made of hard links of another
# checkout's (cp -al) must not change that checkout's stamp
printf '%s\n' "$stamp" > "$CACHE/.stamp.tmp.$$" && mv -f "$CACHE/.stamp.tmp.$$" "$CACHE/.stamp"
after=$(du -sm "$M2" | cut -f1)
log "Kafka runtimes ready in $(( $(date +%s) - started ))s: $CACHE/$KAFKA4_VERSION ($(du -sm "$CACHE/$KAFKA4_VERSION" | cut -f1) MB), $CACHE/$KAFKA3_VERSION ($(du -sm "$CACHE/$KAFKA3_VERSION" | cut -f1) MB); Maven repository $M2 grew by $((after - before)) MB"
