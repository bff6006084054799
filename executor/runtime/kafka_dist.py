"""Kafka runtimes assembled from Maven Central: where each version lives and how to run it.

`tools/kafka/assemble.sh` (run by `make setup`) lays every pinned version out as
`<cache>/<version>/libs/*.jar` plus `<cache>/<version>/config/<logging config>`; the versions are
pinned in `tools/kafka/versions.env`, which kmfwire.kafka_versions parses. Kafka 3.9 runs in ZooKeeper mode
or KRaft and logs through reload4j (`-Dlog4j.configuration=file:...`); Kafka 4.x is KRaft only and
logs through log4j2 (`-Dlog4j2.configurationFile=...`).

Everything here is pure except `KafkaRuntime.check_installed`, which looks at files.
"""
from __future__ import annotations

from pathlib import Path
from typing import Mapping

import attrs

from kmfwire.kafka_versions import (
    VERSION_RE,
    VERSIONS_FILE,
    KafkaDistError,
    KafkaVersions,
    Mode,
    parse_version,
    parse_versions,
    read_versions,
    supported_modes,
)

__all__ = [  # the version names are kmfwire's, re-exported for the runtime's callers
    "DEFAULT_CACHE_DIR", "VERSIONS_FILE", "KafkaDistError", "KafkaRuntime", "KafkaVersions", "Mode",
    "installed_runtimes", "logging_jvm_flags", "parse_version", "parse_versions", "read_versions", "runtime", "runtime_for_mode",
    "supported_modes",
]

REPO_ROOT = Path(__file__).resolve().parents[2]
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "kafka"


def logging_jvm_flags(version: str, config_dir: Path) -> tuple[str, ...]:
    """The JVM flags that point a Kafka process of `version` at the console logging config.

    3.x reads a log4j 1 (reload4j) file from a URL; a bare path would be looked up on the classpath.
    4.x reads a log4j2 file from a path.
    """
    major, _, _ = parse_version(version)
    if major >= 4:
        return (f"-Dlog4j2.configurationFile={Path(config_dir) / 'log4j2.properties'}",)
    return (f"-Dlog4j.configuration=file:{Path(config_dir) / 'log4j.properties'}",)


@attrs.frozen
class KafkaRuntime:
    """One assembled Kafka version: `home/libs/*.jar` and `home/config/<logging config>`."""

    version: str = attrs.field()
    home: Path = attrs.field(converter=Path)

    @version.validator
    def _check_version(self, _attribute: object, value: str) -> None:
        supported_modes(value)

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    @property
    def config_dir(self) -> Path:
        return self.home / "config"

    @property
    def classpath(self) -> str:
        """The `-cp` value: every jar of the folder (a JVM wildcard, never shell-expanded here)."""
        return f"{self.libs}/*"

    @property
    def metrics_agent(self) -> Path:
        """Prometheus' JMX exporter Java agent that tools/kafka/assemble.sh lays out beside libs/."""
        return self.home / "agents" / "jmx_prometheus_javaagent.jar"

    @property
    def modes(self) -> frozenset[Mode]:
        return supported_modes(self.version)

    @property
    def major(self) -> int:
        return parse_version(self.version)[0]

    @property
    def logging_config(self) -> Path:
        """The console logging config its logging flag points at (log4j2 for 4.x, log4j for 3.x)."""
        name = "log4j2.properties" if self.major >= 4 else "log4j.properties"
        return self.config_dir / name

    def logging_flags(self) -> tuple[str, ...]:
        return logging_jvm_flags(self.version, self.config_dir)

    def supports(self, mode: Mode) -> bool:
        return mode in self.modes

    def check_installed(self) -> "KafkaRuntime":
        """Raise KafkaDistError unless the broker jar and the logging config are on disk."""
        broker_jar = self.libs / f"kafka_2.13-{self.version}.jar"
        for needed in (broker_jar, self.logging_config):
            if not needed.is_file():
                raise KafkaDistError(
                    f"Kafka {self.version} runtime is incomplete: {needed} is missing "
                    "(run `make setup`, which calls tools/kafka/assemble.sh)"
                )
        return self


def runtime(version: str, cache_dir: Path = DEFAULT_CACHE_DIR) -> KafkaRuntime:
    """The runtime folder of `version` under `cache_dir` (not checked; see `check_installed`)."""
    return KafkaRuntime(version=version, home=Path(cache_dir) / version)


def runtime_for_mode(
    mode: Mode,
    versions: KafkaVersions,
    cache_dir: Path = DEFAULT_CACHE_DIR,
) -> KafkaRuntime:
    """The pinned runtime for `mode` (4.x for KRaft, 3.9 for ZooKeeper)."""
    return runtime(versions.for_mode(mode), cache_dir)


def installed_runtimes(cache_dir: Path = DEFAULT_CACHE_DIR) -> Mapping[str, KafkaRuntime]:
    """Every assembled version folder under `cache_dir`, by version (reads the directory)."""
    found: dict[str, KafkaRuntime] = {}
    root = Path(cache_dir)
    if root.is_dir():
        for child in sorted(root.iterdir()):
            if VERSION_RE.match(child.name) and (child / "libs").is_dir():
                found[child.name] = KafkaRuntime(version=child.name, home=child)
    return found
