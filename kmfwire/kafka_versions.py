"""The pinned Kafka versions and what each one can run: a contract between tools/kafka/assemble.sh,
the kmf bundle, the scheduler (which version a task gets) and the executor (which runtime it starts).

Pure except `read_versions`, which reads `tools/kafka/versions.env` (shipped in the kmf bundle too).
"""
from __future__ import annotations

import enum
import re
from pathlib import Path

import attrs

from kmfwire.errors import KmfError

REPO_ROOT = Path(__file__).resolve().parents[1]
VERSIONS_FILE = REPO_ROOT / "tools" / "kafka" / "versions.env"

VERSION_RE = re.compile(r"^(\d+)\.(\d+)\.(\d+)$")
_LINE_RE = re.compile(r"^([A-Z][A-Z0-9_]*)=([^\s\"'$`]+)$")


class KafkaDistError(KmfError, ValueError):
    """A Kafka version or runtime folder that kmf cannot use; the message says which and where."""


class Mode(enum.Enum):
    """How a broker finds its metadata: its own Raft quorum, or a ZooKeeper ensemble."""

    KRAFT = "kraft"
    ZOOKEEPER = "zookeeper"


def parse_version(version: str) -> tuple[int, int, int]:
    """`"4.3.1"` -> `(4, 3, 1)`; anything else is a KafkaDistError."""
    match = VERSION_RE.match(version)
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


@attrs.frozen
class KafkaVersions:
    """The pinned versions from `tools/kafka/versions.env`."""

    kafka4: str
    kafka3: str
    kafka4_previous: str | None = None  # an older 4.x, for minor-version upgrades

    @property
    def all(self) -> tuple[str, ...]:
        """Every pinned version, newest line first."""
        return tuple(v for v in (self.kafka4, self.kafka4_previous, self.kafka3) if v)

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
    versions = KafkaVersions(kafka4=values["KAFKA4_VERSION"], kafka3=values["KAFKA3_VERSION"],
                             kafka4_previous=values.get("KAFKA4_PREVIOUS_VERSION"))
    if versions.kafka4_previous is not None and not (
            4 <= parse_version(versions.kafka4_previous)[0] and
            parse_version(versions.kafka4_previous) < parse_version(versions.kafka4)):
        raise KafkaDistError(f"{source}: KAFKA4_PREVIOUS_VERSION={versions.kafka4_previous} is not a 4.x "
                             f"version older than KAFKA4_VERSION={versions.kafka4}")
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
