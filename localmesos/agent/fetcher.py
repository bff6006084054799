"""The agent's fetcher: `CommandInfo.uris` into a sandbox before its executor starts, as Mesos does.

Semantics follow Mesos' `CommandInfo.URI` (include/mesos/v1/mesos.proto) and its fetcher
(src/launcher/fetcher.cpp, src/slave/containerizer/fetcher.cpp):

* ``value``: ``http://``/``https://`` (downloaded), ``file://`` or a plain absolute path (copied);
* ``extract`` (default true): a ``.tar``, ``.tgz``, ``.tar.gz``, ``.tbz2``, ``.tar.bz2``, ``.txz``,
  ``.tar.xz`` or ``.zip`` is unpacked into the sandbox and the archive stays beside it, a bare
  ``.gz`` is decompressed beside it; anything else is only copied (with a warning), and an
  ``executable`` file is never unpacked;
* ``executable``: the file gets mode 0755;
* ``output_file``: the name (a relative path, folders made) of the copy in the sandbox;
* ``cache``: the download goes into the agent's cache (keyed by the URI; least recently used
  files evicted beyond the size limit; a file larger than the whole cache bypasses it) and the
  sandbox gets it from there, so a relaunch does not download again. A cached archive is unpacked
  straight from the cache, not copied first.

The log goes to the sandbox's ``stderr``, as mesos-fetcher's does. A failure raises `FetchError`;
the agent turns it into the task's TASK_FAILED.
"""
from __future__ import annotations

import collections
import contextlib
import gzip
import itertools
import os
import shutil
import subprocess
import threading
import time
import urllib.error
import urllib.parse
import urllib.request
import zipfile
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, TextIO

from kmfwire.errors import KmfError

TAR_SUFFIXES = (".tar", ".tgz", ".tar.gz", ".tbz2", ".tar.bz2", ".txz", ".tar.xz")
DOWNLOAD_TIMEOUT_S = 60.0
CHUNK = 1 << 20


class FetchError(KmfError):
    """One URI could not be fetched; the message says which and why."""


def _log(out: TextIO, message: str) -> None:
    now = time.time()
    stamp = time.strftime("%m%d %H:%M:%S", time.localtime(now)) + f".{int(now % 1 * 1e6):06d}"
    out.write(f"I{stamp} {os.getpid()} fetcher.py] {message}\n")
    out.flush()


def basename(uri: str) -> str:
    """The last path segment of a URI (query and fragment dropped), as Mesos names its copy."""
    path = urllib.parse.urlsplit(uri).path if "://" in uri else uri
    name = path.rstrip("/").rsplit("/", 1)[-1]
    if not name:
        raise FetchError(f"Malformed URI (no file name): {uri}")
    return urllib.parse.unquote(name)


def local_path(uri: str) -> Path | None:
    """The file a ``file://`` or scheme-less URI names; None for a network URI."""
    if uri.startswith("file://"):
        path = urllib.parse.unquote(urllib.parse.urlsplit(uri).path)
    elif "://" in uri:
        return None
    else:
        path = uri
    if not os.path.isabs(path):
        raise FetchError(f"A relative path was passed for the resource but no frameworks home "
                         f"is configured: {uri}")
    return Path(path)


def is_archive(name: str) -> bool:
    """Unpacked by `extract` (a bare ``.gz`` is decompressed beside it, as Mesos gunzips it)."""
    return name.endswith(TAR_SUFFIXES) or name.endswith((".zip", ".gz"))


def download(uri: str, dest: Path, timeout: float = DOWNLOAD_TIMEOUT_S) -> None:
    """Copy or download `uri` to `dest` (written under a temporary name, then renamed)."""
    tmp = dest.with_name(f".{dest.name}.part")
    src = local_path(uri)
    try:
        if src is not None:
            try:
                shutil.copyfile(src, tmp)
            except OSError as exc:
                raise FetchError(f"Failed to copy '{src}': {exc.strerror or exc}") from None
        elif uri.startswith(("http://", "https://")):
            try:
                with urllib.request.urlopen(uri, timeout=timeout) as resp, open(tmp, "wb") as out:
                    shutil.copyfileobj(resp, out, CHUNK)
            except urllib.error.HTTPError as exc:
                raise FetchError(f"Error downloading resource, received HTTP return code {exc.code}") from None
            except (urllib.error.URLError, OSError) as exc:
                reason = getattr(exc, "reason", None) or exc
                raise FetchError(f"Error downloading resource: {reason}") from None
        else:
            raise FetchError(f"Unsupported URI scheme (http, https, file or an absolute path): {uri}")
        os.replace(tmp, dest)
    finally:
        tmp.unlink(missing_ok=True)


def extract(archive: Path, into: Path) -> None:
    """Unpack a tar (any compression GNU tar knows) or zip archive into `into`."""
    name = archive.name
    try:
        if name.endswith(".zip"):
            with zipfile.ZipFile(archive) as zf:
                zf.extractall(into)
        elif name.endswith(".gz") and not name.endswith(TAR_SUFFIXES):
            with gzip.open(archive) as src, open(into / name[:-3], "wb") as out:
                shutil.copyfileobj(src, out, CHUNK)
        else:
            done = subprocess.run(["tar", "-xf", str(archive), "-C", str(into)],
                                  capture_output=True, text=True)
            if done.returncode != 0:
                raise FetchError(f"Failed to extract archive '{archive}' to '{into}': "
                                 f"{done.stderr.strip() or f'tar exited with {done.returncode}'}")
    except (OSError, EOFError, zipfile.BadZipFile) as exc:
        raise FetchError(f"Failed to extract archive '{archive}' to '{into}': {exc}") from None


class FetcherCache:
    """An agent's download cache: URI → file under `root`, at most `max_bytes` in all.

    Cleared when the agent starts (Mesos does the same: its cache index lives in memory). Thread
    safe; one download per URI at a time (a second fetch of the same URI waits and hits)."""

    def __init__(self, root: Path, max_bytes: int) -> None:
        self.root = Path(root)
        self.max_bytes = max_bytes
        shutil.rmtree(self.root, ignore_errors=True)
        self.root.mkdir(parents=True, exist_ok=True)
        self._lock = threading.Lock()
        self._entries: collections.OrderedDict[str, tuple[Path, int]] = collections.OrderedDict()
        self._busy: dict[str, threading.Lock] = {}
        self._serial = itertools.count(1)
        self.hits = 0
        self.misses = 0

    def _file_name(self, uri: str) -> str:
        base = basename(uri)
        if len(base) > 20:  # enough of the name to relate the file to its URI, extension kept
            base = f"{base[:10]}_{base[-10:]}"
        return f"c{next(self._serial)}-{base}"

    @contextlib.contextmanager
    def fetched(self, uri: str, out: TextIO) -> Iterator[Path | None]:
        """The cached file of `uri`, downloaded first on a miss (None when it is too large to
        cache), kept from eviction while the caller copies or extracts it. The action is logged in
        Mesos' words (RETRIEVE_FROM_CACHE or DOWNLOAD_AND_CACHE)."""
        with self._lock:
            key_lock = self._busy.setdefault(uri, threading.Lock())
        with key_lock:
            yield self._get(uri, out)

    def _get(self, uri: str, out: TextIO) -> Path | None:
        """Called with the URI's lock held."""
        with self._lock:
            entry = self._entries.get(uri)
            if entry is not None and entry[0].is_file():
                self._entries.move_to_end(uri)
                self.hits += 1
                _log(out, f"Cache action for '{uri}': RETRIEVE_FROM_CACHE ({entry[0].name})")
                return entry[0]
            self._entries.pop(uri, None)
            path = self.root / self._file_name(uri)
        _log(out, f"Cache action for '{uri}': DOWNLOAD_AND_CACHE ({path.name})")
        download(uri, path)
        size = path.stat().st_size
        with self._lock:
            self.misses += 1
            if size > self.max_bytes:
                _log(out, f"'{uri}' ({size} bytes) is larger than the fetcher cache "
                          f"({self.max_bytes} bytes): fetching it around the cache")
                path.unlink(missing_ok=True)
                return None
            self._entries[uri] = (path, size)
            self._evict()
        return path

    def _evict(self) -> None:
        total = sum(size for _, size in self._entries.values())
        for key in list(self._entries):
            if total <= self.max_bytes:
                break
            path, size = self._entries[key]
            busy = self._busy.get(key)
            if busy is not None and busy.locked():
                continue  # being fetched or read right now (the newest entry too)
            del self._entries[key]
            path.unlink(missing_ok=True)
            total -= size


def _target(uri: Mapping[str, Any], sandbox: Path) -> Path:
    name = uri.get("output_file") or basename(str(uri["value"]))
    if os.path.isabs(name) or ".." in Path(name).parts:
        raise FetchError(f"output_file must be a relative path inside the sandbox: {name!r}")
    path = sandbox / name
    path.parent.mkdir(parents=True, exist_ok=True)
    return path


def fetch_one(uri: Mapping[str, Any], sandbox: Path, cache: FetcherCache | None, out: TextIO) -> Path:
    """Fetch one `CommandInfo.URI` (JSON) into `sandbox`; the file (or the sandbox when unpacked)."""
    value = str(uri.get("value") or "").strip()
    if not value:
        raise FetchError("URI has no value")
    executable = bool(uri.get("executable", False))
    wants_extract = bool(uri.get("extract", True)) and not executable
    target = _target(uri, sandbox)
    with (cache.fetched(value, out) if cache is not None and uri.get("cache")
          else contextlib.nullcontext()) as cached:
        if cached is not None:
            _log(out, f"Fetching URI '{value}' from cache")
            if wants_extract and is_archive(target.name):
                extract(cached, sandbox)
                _log(out, f"Extracted '{cached}' into '{sandbox}'")
                return sandbox
            shutil.copyfile(cached, target)
    if cached is None:
        _log(out, f"Fetching '{value}' directly into the sandbox directory")
        _log(out, f"Downloading resource from '{value}' to '{target}'")
        download(value, target)
    if executable:
        target.chmod(0o755)
    elif wants_extract:
        if is_archive(target.name):
            extract(target, sandbox)
            _log(out, f"Extracted '{target}' into '{sandbox}'")
            return sandbox
        _log(out, f"Copying instead of extracting resource from URI with 'extract' flag, "
                  f"because it does not seem to be an archive: {value}")
    return target


def fetch_all(uris: Iterable[Mapping[str, Any]], sandbox: Path, cache: FetcherCache | None,
              out: TextIO) -> None:
    """Fetch every URI in order; the first failure is logged and raised as `FetchError`."""
    items = list(uris)
    if not items:
        return
    for uri in items:
        _log(out, f"Fetching URI '{uri.get('value')}'")
        try:
            where = fetch_one(uri, sandbox, cache, out)
        except FetchError as exc:
            _log(out, f"Failed to fetch '{uri.get('value')}': {exc}")
            raise FetchError(f"Failed to fetch '{uri.get('value')}': {exc}") from None
        except OSError as exc:  # sandbox full, permissions: the same failure to the task
            _log(out, f"Failed to fetch '{uri.get('value')}': {exc}")
            raise FetchError(f"Failed to fetch '{uri.get('value')}': {exc}") from None
        _log(out, f"Fetched '{uri.get('value')}' to '{where}'")
    _log(out, f"Successfully fetched all URIs into '{sandbox}'")


def parse_bytes(text: str) -> int:
    """A Mesos Bytes flag: ``2GB``, ``512MB``, ``100KB``, ``10B`` or a plain number of bytes."""
    text = text.strip().upper()
    for unit, factor in (("TB", 1 << 40), ("GB", 1 << 30), ("MB", 1 << 20), ("KB", 1 << 10), ("B", 1)):
        if text.endswith(unit):
            return int(float(text[: -len(unit)]) * factor)
    return int(text)
