"""Kafka runtimes assembled from Maven Central: where each version lives and how to run it.

`tools/kafka/assemble.sh` (run by `make setup`) lays every pinned version out as
`<cache>/<version>/libs/*.jar` plus `<cache>/<version>/config/<logging config>`; the versions are
pinned in `tools/kafka/versions.env`, which this module parses too. Kafka 3.9 runs in ZooKeeper mode
or KRaft and logs through reload4j (`-Dlog4j.configuration=file:...`); Kafka 4.x is KRaft only and
logs through log4j2 (`-Dlog4j2.configurationFile=...`).

Everything here is pure except `read_versions` and `KafkaRuntime.check_installed`, which read files.
"""
from __future__ import annotations

import enum
import re
from pathlib import Path
from typing import Mapping

import attrs

REPO_ROOT = Path(__file__).resolve().parents[2]
VERSIONS_FILE = REPO_ROOT / "tools" / "kafka" / "versions.env"
DEFAULT_CACHE_DIR = REPO_ROOT / ".cache" / "kafka"

_VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_LINE_RE = re.compile(r"^([A-Z][A-Z0-9_]*)=([^\s\"'$`]+)$")


class KafkaDistError(ValueError):
    """A Kafka version or runtime folder that kmf cannot use; the message says which and where."""


class Mode(enum.Enum):
    """How a broker finds its metadata: its own Raft quorum, or a ZooKeeper ensemble."""

    KRAFT = "kraft"
    ZOOKEEPER = "zookeeper"


def parse_version(version: str) -> tuple[int, int, int]:
    """`"4.3.1"` -> `(4, 3, 1)`; anything else is a KafkaDistError."""
    match = _VERSION_RE.match(version)
    if not match:
        raise KafkaDistError(f"Kafka version {version!r} is not of the form MAJOR.MINOR.PATCH")
    major, minor, patch = (int(part) for part in match.groups())
    return major, minor, patch


def supported_modes(version: str) -> frozenset[Mode]:
    """Modes a Kafka version can run in: 3.x both, 4.x and later KRaft only (ZooKeeper was removed)."""
    major, minor, _ = parse_version(version)
    if major >= 4:
        return frozenset({Mode.KRAFT})
    if major == 3 and minor >= 3:  # KRaft is production-ready from 3.3
        return frozenset({Mode.KRAFT, Mode.ZOOKEEPER})
    raise KafkaDistError(f"Kafka {version} is too old for kmf (3.3 or newer is needed)")


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
class KafkaVersions:
    """The pinned versions from `tools/kafka/versions.env`."""

    kafka4: str
    kafka3: str

    def for_mode(self, mode: Mode) -> str:
        """The version kmf runs for `mode`: the 4.x line for KRaft, the 3.9 line for ZooKeeper."""
        return self.kafka4 if mode is Mode.KRAFT else self.kafka3


def parse_versions(text: str, source: str = "versions.env") -> KafkaVersions:
    """Parse the KEY=VALUE lines of versions.env (comments and blank lines skipped)."""
    values: dict[str, str] = {}
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.strip()
        if not line or line.startswith("#"):
            continue
        match = _LINE_RE.match(line)
        if not match:
            raise KafkaDistError(f"{source} (line {number}): expected KEY=VALUE, got {raw!r}")
        values[match.group(1)] = match.group(2)
    missing = [key for key in ("KAFKA4_VERSION", "KAFKA3_VERSION") if key not in values]
    if missing:
        raise KafkaDistError(f"{source}: {', '.join(missing)} not set")
    versions = KafkaVersions(kafka4=values["KAFKA4_VERSION"], kafka3=values["KAFKA3_VERSION"])
    if parse_version(versions.kafka4)[0] < 4:
        raise KafkaDistError(f"{source}: KAFKA4_VERSION={versions.kafka4} is not a 4.x version")
    if Mode.ZOOKEEPER not in supported_modes(versions.kafka3):
        raise KafkaDistError(f"{source}: KAFKA3_VERSION={versions.kafka3} has no ZooKeeper mode")
    return versions


def read_versions(path: Path = VERSIONS_FILE) -> KafkaVersions:
    """Read and parse the pinned versions file."""
    try:
        text = Path(path).read_text()
    except OSError as exc:
        raise KafkaDistError(f"cannot read pinned Kafka versions from {path}: {exc}") from exc
    return parse_versions(text, str(path))


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
            if _VERSION_RE.match(child.name) and (child / "libs").is_dir():
                found[child.name] = KafkaRuntime(version=child.name, home=child)
    return found
