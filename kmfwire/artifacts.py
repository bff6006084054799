"""What reaches the agents through the Mesos fetcher: the kmf bundle and the Kafka archives.

`tools/artifacts.sh` (run by `make setup`) builds them into ``.cache/artifacts``:

* ``kmf-<version>-py<X.Y>-linux-<machine>.tar.gz``: one top folder of the same name holding kmf's
  packages and every runtime dependency, plus ``KMF_BUNDLE`` (which Python and platform it needs:
  confluent-kafka and cryptography are binary wheels for one Python minor version);
* ``kafka-<version>.tar.gz``: ``kafka/<version>/{libs,config}``, the layout of ``.cache/kafka``, so
  that ``KMF_KAFKA_CACHE=<sandbox>/kafka``.

Standard library only: `check_interpreter` runs before any dependency is imported.
"""
from __future__ import annotations

import json
import os
import platform
import sys
from pathlib import Path
from typing import Mapping

REPO_ROOT = Path(__file__).resolve().parent.parent
DEFAULT_DIR = REPO_ROOT / ".cache" / "artifacts"
ENV_DIR = "KMF_ARTIFACTS"
MARKER = "KMF_BUNDLE"
KAFKA_FOLDER = "kafka"  # the top folder of every Kafka archive kmf builds
ARCHIVE_SUFFIXES = (".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".tar", ".zip")


def version() -> str:
    from kmfwire import __version__
    return __version__


def platform_tag(version_info: tuple[int, ...] = tuple(sys.version_info[:2]),
                 machine: str = platform.machine()) -> str:
    """``py3.11-linux-x86_64``: what a bundle built by this interpreter runs on."""
    return f"py{version_info[0]}.{version_info[1]}-linux-{machine}"


def bundle_name(tag: str | None = None) -> str:
    return f"kmf-{version()}-{tag or platform_tag()}"


def bundle_file(tag: str | None = None) -> str:
    return f"{bundle_name(tag)}.tar.gz"


def kafka_file(kafka_version: str) -> str:
    return f"kafka-{kafka_version}.tar.gz"


def served_dir(configured: str | None = None, env: Mapping[str, str] | None = None) -> Path:
    """Where the scheduler looks for archives to serve: the config's dir, else $KMF_ARTIFACTS,
    else this checkout's (or this bundle's) ``.cache/artifacts``."""
    env = os.environ if env is None else env
    return Path(configured or env.get(ENV_DIR) or DEFAULT_DIR)


def archive_folder(uri: str) -> str:
    """The folder an archive unpacks to, by kmf's convention: its file name without the suffix
    (``.../kmf-0.1.0-py3.11-linux-x86_64.tar.gz`` → ``kmf-0.1.0-py3.11-linux-x86_64``)."""
    name = uri.split("?", 1)[0].rstrip("/").rsplit("/", 1)[-1]
    for suffix in ARCHIVE_SUFFIXES:
        if name.endswith(suffix):
            return name[: -len(suffix)]
    return name


def is_archive(uri: str) -> bool:
    return uri.split("?", 1)[0].endswith(ARCHIVE_SUFFIXES)


def check_interpreter(root: Path = REPO_ROOT) -> str | None:
    """Why this interpreter cannot run the bundle kmf was loaded from; None when it can (or when
    kmf runs from a checkout, not from a bundle)."""
    try:
        info = json.loads((root / MARKER).read_text())
    except (OSError, ValueError):
        return None
    here = f"{sys.version_info[0]}.{sys.version_info[1]}"
    machine = f"linux-{platform.machine()}" if sys.platform.startswith("linux") else sys.platform
    if info.get("python") == here and info.get("platform") == machine:
        return None
    return (f"the kmf bundle {info.get('name')} needs Python {info.get('python')} on {info.get('platform')}, "
            f"but {sys.executable} is Python {platform.python_version()} on {machine}: run it with a "
            f"Python {info.get('python')} (executor.python in the service config names the agents' one)")
