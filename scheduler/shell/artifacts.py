"""The archives this scheduler serves to the agents' fetchers: found on disk, content-addressed.

`find` looks in the served folder (kmfwire.artifacts.served_dir) for the kmf bundle built for this
interpreter and every ``kafka-<version>.tar.gz``, and takes each one's sha256 from the
``<file>.sha256`` that tools/artifacts.sh writes beside it (hashing ~150 MB at every scheduler
start would cost a second or more), or hashes the file when that is missing or older. `served`
turns them into the core's `Served` value with URLs on this scheduler's advertised address; the
API serves `GET /v1/artifacts/<sha256>/<file>` from the same table.
"""
from __future__ import annotations

import hashlib
import logging
import os
import re
from pathlib import Path
from typing import Mapping

import attrs

from kmfwire import artifacts as names
from scheduler.core.artifacts import Artifact, Served

log = logging.getLogger(__name__)

_KAFKA = re.compile(r"^kafka-(\d+\.\d+\.\d+)\.tar\.gz$")


@attrs.frozen
class ArtifactFile:
    """One archive as found at start. `fd` stays open: a `make setup` that replaces the file while
    the scheduler runs (a new inode) must not change what is served under the old sha256, or the
    agents' fetcher caches would keep the new content under the old URI."""

    path: Path
    sha256: str
    size: int
    fd: int

    @property
    def name(self) -> str:
        return self.path.name

    def reader(self) -> Path:
        """A path that opens the content found at start, whatever happened to `path` since."""
        return Path(f"/proc/self/fd/{self.fd}")


def sha256_of(path: Path) -> str:
    side = path.with_name(path.name + ".sha256")
    try:
        if side.stat().st_mtime >= path.stat().st_mtime:
            digest, _, name = side.read_text().strip().partition("  ")
            if name == path.name and re.fullmatch(r"[0-9a-f]{64}", digest):
                return digest
    except OSError:
        pass
    h = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            h.update(chunk)
    return h.hexdigest()


def find(directory: Path) -> dict[str, ArtifactFile]:
    """The bundle for this interpreter and every Kafka archive in `directory`, by sha256."""
    found: dict[str, ArtifactFile] = {}
    if not directory.is_dir():
        return found
    candidates = [directory / names.bundle_file()]
    candidates += sorted(p for p in directory.iterdir() if _KAFKA.match(p.name))
    for path in candidates:
        if path.is_file():
            fd = os.open(path, os.O_RDONLY)
            size = os.fstat(fd).st_size
            item = ArtifactFile(path.resolve(), sha256_of(path), size, fd)
            found[item.sha256] = item
    return found


def url(base: str, item: ArtifactFile) -> str:
    return f"{base.rstrip('/')}/v1/artifacts/{item.sha256}/{item.name}"


def served(files: Mapping[str, ArtifactFile], base: str) -> Served:
    """The core's view: the bundle and the Kafka archives by version, at `base` (this API)."""
    bundle = None
    kafka: dict[str, Artifact] = {}
    for item in files.values():
        match = _KAFKA.match(item.name)
        if match:
            kafka[match.group(1)] = Artifact(url(base, item), names.KAFKA_FOLDER, item.sha256)
        elif item.name == names.bundle_file():
            bundle = Artifact(url(base, item), names.archive_folder(item.name), item.sha256)
    return Served(bundle, kafka)
