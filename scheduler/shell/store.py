"""The ZooKeeper state store: znode layout, JSON (de)serialisation, versioned transactions.

ZooKeeper is the scheduler's source of truth. Layout under ``/<root>/<service>/``::

    schema_version         "1" — anything else is refused (StoreError), never reset
    framework_id           {"value": "<id>"}              absent until Mesos assigned one
    target_config          {"id": "<config id>"}          pointer into configs/
    configs/<id>           every applied target config, kept by id (JSON)
    tasks/<name>           one record per task (TaskInfo as launched, last status, goal, ...)
    properties/<key>       small values: Kafka cluster id, next broker id, ...
    plans/<name>           plan progress
    leader/                leader election (scheduler.shell.leader)
    uninstalled            {"at": ..., "framework_id": ...}: the tombstone an uninstall leaves;
                           the only node left, so that a restarted scheduler stays uninstalled

Every multi-node change is one kazoo transaction. Each znode the store has read or written is
remembered with its version and rewritten only at that version (CheckVersion semantics), so a
second writer — a deposed leader — fails with StoreConflict instead of silently winning. With a
*fence* set (the leader's ephemeral lock node) every transaction also checks that the node still
exists: a scheduler whose session ended cannot write at all.

The store does not interpret records; a `Codec` turns them into JSON values and back (the default
keeps plain JSON values). Decoding problems
(bad JSON, missing fields) raise StoreError naming the znode.

Not thread-safe beyond one writer thread plus occasional calls guarded by the internal lock.
"""
from __future__ import annotations

import json
import logging
import re
import threading
from collections import namedtuple
from typing import Any, Mapping, Protocol, Sequence

import attrs
from kazoo.client import KazooClient
from kazoo.exceptions import (
    EXCEPTIONS,
    BadVersionError,
    ConnectionClosedError,
    ConnectionLoss,
    KazooException,
    NodeExistsError,
    NoNodeError,
    RolledBackError,
    UnimplementedError,
)
from kazoo.protocol.paths import _prefix_root
from kazoo.protocol.serialization import (
    GetData,
    MultiHeader,
    int_struct,
    multiheader_struct,
    read_buffer,
    stat_struct,
)
from kazoo.protocol.states import ZnodeStat
from kazoo.security import make_digest_acl

from scheduler.shell.errors import StoreConflict, StoreError

log = logging.getLogger(__name__)

SCHEMA_VERSION = 1
KINDS = ("configs", "tasks", "properties", "plans")
TOMBSTONE = "uninstalled"
_LOAD_TIMEOUT = 60.0
_READ_WINDOW = 1000
# multiRead: getData of this many nodes per request, for the areas of small records only (a
# response stays far below ZooKeeper's 1 MB packet limit)
_MULTI_READ_BATCH = 100
_MULTI_READ_KINDS = ("tasks", "properties")
_SERVER_VERSION = re.compile(r"Zookeeper version: (\d+)\.(\d+)\.")


# ------------------------------------------------------------------------------------- values


@attrs.frozen
class Put:
    """Create or overwrite ``<kind>/<key>`` with `value` (encoded by the store's codec)."""

    kind: str
    key: str
    value: Any


@attrs.frozen
class Delete:
    """Remove ``<kind>/<key>`` (at the version last seen)."""

    kind: str
    key: str


@attrs.frozen
class SetFrameworkId:
    """Record the framework id Mesos assigned; None forgets it (framework removed)."""

    value: str | None


@attrs.frozen
class SetTargetConfig:
    """Point ``target_config`` at ``configs/<config_id>`` (which must exist or be Put alongside)."""

    config_id: str


Change = Put | Delete | SetFrameworkId | SetTargetConfig


@attrs.frozen
class StoredState:
    """Everything the store holds, decoded: what a (new) leader starts from."""

    framework_id: str | None = None
    target_config_id: str | None = None
    configs: Mapping[str, Any] = attrs.field(factory=dict)
    tasks: Mapping[str, Any] = attrs.field(factory=dict)
    properties: Mapping[str, Any] = attrs.field(factory=dict)
    plans: Mapping[str, Any] = attrs.field(factory=dict)

    @property
    def target_config(self) -> Any:
        return self.configs.get(self.target_config_id) if self.target_config_id else None


class Codec(Protocol):
    def encode(self, kind: str, value: Any) -> Any:
        """A JSON-serialisable value for `value` stored under `kind`."""

    def decode(self, kind: str, doc: Any) -> Any:
        """The record for JSON value `doc`; raises (any exception) when it does not fit."""


class JsonCodec:
    """Keeps plain JSON values; tasks, configs and plans must be JSON objects."""

    def encode(self, kind: str, value: Any) -> Any:
        return value

    def decode(self, kind: str, doc: Any) -> Any:
        if kind in ("tasks", "configs", "plans") and not isinstance(doc, dict):
            raise ValueError(f"expected a JSON object, found {type(doc).__name__}")
        return doc


def digest_acl(credentials: str | None) -> list | None:
    """ACLs for every node the store creates when `credentials` (``user:password``) are set."""
    if not credentials:
        return None
    user, sep, password = credentials.partition(":")
    if not sep or not user:
        raise StoreError("ZooKeeper credentials must look like user:password")
    return [make_digest_acl(user, password, all=True)]


def validate_key(key: str, what: str) -> str:
    if not isinstance(key, str) or not key or key in (".", "..") or "/" in key or "\0" in key:
        raise StoreError(f"invalid {what} name {key!r}: must be a non-empty znode name without '/'")
    return key


class _MultiRead(namedtuple("_MultiRead", "paths")):
    """ZooKeeper's multiRead (opcode 22, servers 3.6 and later): the getData of many nodes in one
    request and one response, each answered on its own (not atomic, like separate reads).

    kazoo has no call for it but sends any request object with `type`, `serialize()` and
    `deserialize()` through its connection; the answer is, per path in order, ``(data, stat)`` as
    `KazooClient.get` gives it, or the KazooException of that read (NoNodeError for a node gone)."""

    type = 22

    def serialize(self) -> bytearray:
        out = bytearray()
        for path in self.paths:
            out.extend(multiheader_struct.pack(GetData.type, 0, -1))
            out.extend(GetData(path, None).serialize())
        out.extend(multiheader_struct.pack(-1, 1, -1))
        return out

    @classmethod
    def deserialize(cls, buffer: bytes, offset: int) -> list[Any]:
        results: list[Any] = []
        header, offset = MultiHeader.deserialize(buffer, offset)
        while not header.done:
            if header.type == GetData.type:
                data, offset = read_buffer(buffer, offset)
                results.append((data, ZnodeStat._make(stat_struct.unpack_from(buffer, offset))))
                offset += stat_struct.size
            elif header.type == -1:
                results.append(EXCEPTIONS[int_struct.unpack_from(buffer, offset)[0]]())
                offset += int_struct.size
            else:
                raise ValueError(f"multiRead: unexpected result of type {header.type}")
            header, offset = MultiHeader.deserialize(buffer, offset)
        return results


def _dumps(doc: Any) -> bytes:
    return json.dumps(doc, sort_keys=True, separators=(",", ":")).encode("utf-8")


# ------------------------------------------------------------------------------------- store


class StateStore:
    """The framework's state under ``<root>/<service>`` on a started KazooClient."""

    def __init__(
        self,
        client: KazooClient,
        service: str,
        root: str = "/kmf",
        codec: Codec | None = None,
        acl: list | None = None,
    ) -> None:
        validate_key(service, "service")
        if not root.startswith("/") or root.endswith("/") and root != "/":
            raise StoreError(f"invalid ZooKeeper root {root!r}: must start with '/' and not end with it")
        self.client = client
        self.base = f"{root.rstrip('/')}/{service}"
        self.codec: Codec = codec or JsonCodec()
        self.acl = acl
        self._versions: dict[str, int] = {}
        self._fence: str | None = None
        self._lock = threading.RLock()

    # paths --------------------------------------------------------------------------------------
    def path(self, kind: str, key: str | None = None) -> str:
        if kind not in KINDS and kind not in ("framework_id", "target_config", "schema_version",
                                              "leader", TOMBSTONE):
            raise StoreError(f"unknown store area {kind!r}")
        if key is None:
            return f"{self.base}/{kind}"
        return f"{self.base}/{kind}/{validate_key(key, kind.rstrip('s'))}"

    def set_fence(self, path: str | None) -> None:
        """Make every later write conditional on `path` (the leader's lock node) still existing."""
        with self._lock:
            self._fence = path

    # start-up ---------------------------------------------------------------------------------
    def initialize(self) -> None:
        """Create the layout if it is new; refuse an unknown schema version."""
        with self._lock:
            try:
                self._initialize()
            except KazooException as exc:
                raise StoreError(f"cannot initialise the state store: {exc!r}", self.base) from exc

    def _initialize(self) -> None:
        version_path = self.path("schema_version")
        try:
            data, _ = self.client.get(version_path)
        except NoNodeError:
            data = None
        if data is None:
            self.client.ensure_path(self.base, acl=self.acl)
            existing = set(self.client.get_children(self.base))
            if existing - {"leader", TOMBSTONE}:
                raise StoreError(
                    f"has state ({', '.join(sorted(existing))}) but no schema_version; refusing to "
                    "guess its format", self.base)
            txn = self.client.transaction()
            txn.create(version_path, str(SCHEMA_VERSION).encode(), acl=self.acl)
            for kind in KINDS:
                txn.create(self.path(kind), b"", acl=self.acl)
            self._commit_txn(txn, [version_path] + [self.path(k) for k in KINDS], fenced=False)
            return
        try:
            found = int(data.decode("utf-8").strip())
        except (UnicodeDecodeError, ValueError):
            raise StoreError(f"unreadable schema version {data[:40]!r}", version_path) from None
        if found != SCHEMA_VERSION:
            raise StoreError(
                f"unknown schema version {found} (this kmf reads version {SCHEMA_VERSION}); "
                "refusing to touch it", version_path)
        for kind in KINDS:
            self.client.ensure_path(self.path(kind), acl=self.acl)

    def load(self) -> StoredState:
        """Read and decode everything (concurrent reads: thousands of tasks in well under 2 s)."""
        with self._lock:
            try:
                return self._load()
            except KazooException as exc:
                raise StoreError(f"cannot read the state store: {exc!r}", self.base) from exc

    def _load(self) -> StoredState:
        self._check_schema()
        listing: list[tuple[str, str, str]] = []
        for kind in KINDS:
            try:
                children = self.client.get_children(self.path(kind))
            except NoNodeError:
                raise StoreError("missing (the layout is incomplete)", self.path(kind)) from None
            listing.extend((kind, key, f"{self.path(kind)}/{key}") for key in sorted(children))
        singles = {name: self.client.get_async(self.path(name))
                   for name in ("framework_id", "target_config")}
        areas: dict[str, dict[str, Any]] = {kind: {} for kind in KINDS}
        versions: dict[str, int] = {}
        bulk = self._multi_read_supported()
        found = self._read_nodes([path for kind, _, path in listing if bulk and kind in _MULTI_READ_KINDS],
                                 bulk=True)
        found.update(self._read_nodes([path for kind, _, path in listing
                                       if not (bulk and kind in _MULTI_READ_KINDS)], bulk=False))
        for kind, key, path in listing:
            got = found[path]
            if got is None:
                continue  # deleted between the listing and the read
            data, stat = got
            areas[kind][key] = self._decode(kind, path, data)
            versions[path] = stat.version
        single_docs: dict[str, Any] = {}
        for name, result in singles.items():
            path = self.path(name)
            try:
                data, stat = result.get(timeout=_LOAD_TIMEOUT)
            except NoNodeError:
                continue
            single_docs[name] = self._field(path, self._json(path, data), "value" if name ==
                                            "framework_id" else "id")
            versions[path] = stat.version
        target = single_docs.get("target_config")
        if target is not None and target not in areas["configs"]:
            raise StoreError(f"points at config {target!r}, which is not stored",
                             self.path("target_config"))
        self._versions = versions
        return StoredState(
            framework_id=single_docs.get("framework_id"),
            target_config_id=target,
            configs=areas["configs"], tasks=areas["tasks"],
            properties=areas["properties"], plans=areas["plans"],
        )

    def _multi_read_supported(self) -> bool:
        """Whether the server answers multiRead (ZooKeeper 3.6 and later), as its `srvr` answer
        says. An older server closes the connection on a request it does not know, so anything
        else (no answer, the command not whitelisted, an older version) means plain reads."""
        if not callable(getattr(self.client, "_call", None)):
            return False
        try:
            text = self.client.command(b"srvr")
        except Exception:  # noqa: BLE001 - no answer: plain reads, which work everywhere
            return False
        match = _SERVER_VERSION.search(text if isinstance(text, str) else "")
        return match is not None and (int(match[1]), int(match[2])) >= (3, 6)

    def _read_nodes(self, paths: list[str], bulk: bool) -> dict[str, tuple[bytes, Any] | None]:
        """``(data, stat)`` of every node of `paths`, None for one deleted since it was listed.

        Reads are pipelined in windows: requests go out without waiting for each answer (one
        window at a time keeps kazoo's queue short). With `bulk`, a window is a few multiRead
        requests instead of one getData per node: kazoo spends ~0.1 ms of CPU per request, which
        was most of a restart with 10,000 task records (2.2 s of reads, 0.1 s with multiRead)."""
        out: dict[str, tuple[bytes, Any] | None] = {}
        for start in range(0, len(paths), _READ_WINDOW):
            window = paths[start:start + _READ_WINDOW]
            if bulk:
                try:
                    out.update(self._multi_read(window))
                    continue
                except (UnimplementedError, ConnectionLoss, ConnectionClosedError) as exc:
                    log.warning("multiRead failed (%r); reading node by node", exc)
                    bulk = False
            pending = [(path, self.client.get_async(path)) for path in window]
            for path, result in pending:
                try:
                    out[path] = result.get(timeout=_LOAD_TIMEOUT)
                except NoNodeError:
                    out[path] = None
        return out

    def _multi_read(self, paths: list[str]) -> dict[str, tuple[bytes, Any] | None]:
        requests = []
        chroot = self.client.chroot
        for start in range(0, len(paths), _MULTI_READ_BATCH):
            batch = paths[start:start + _MULTI_READ_BATCH]
            # the paths as kazoo's own calls send them (listed children: already normal)
            sent = tuple(_prefix_root(chroot, p) for p in batch) if chroot else tuple(batch)
            result = self.client.handler.async_result()
            self.client._call(_MultiRead(sent), result)
            requests.append((batch, result))
        out: dict[str, tuple[bytes, Any] | None] = {}
        for batch, result in requests:
            answers = result.get(timeout=_LOAD_TIMEOUT)
            if len(answers) != len(batch):
                raise StoreError(f"multiRead answered {len(answers)} reads of {len(batch)}", batch[0])
            for path, answer in zip(batch, answers):
                if isinstance(answer, NoNodeError):
                    out[path] = None
                elif isinstance(answer, Exception):
                    raise answer
                else:
                    out[path] = answer
        return out

    def _check_schema(self) -> None:
        path = self.path("schema_version")
        try:
            data, _ = self.client.get(path)
        except NoNodeError:
            raise StoreError("missing: the store was never initialised", path) from None
        if data.strip() != str(SCHEMA_VERSION).encode():
            raise StoreError(f"unknown schema version {data[:40]!r} (this kmf reads "
                             f"{SCHEMA_VERSION})", path)

    # decoding ---------------------------------------------------------------------------------
    @staticmethod
    def _json(path: str, data: bytes) -> Any:
        try:
            return json.loads(data.decode("utf-8"))
        except (UnicodeDecodeError, ValueError) as exc:
            raise StoreError(f"corrupt JSON ({exc}); first bytes {data[:60]!r}", path) from None

    @staticmethod
    def _field(path: str, doc: Any, name: str) -> str:
        if not isinstance(doc, dict) or not isinstance(doc.get(name), str) or not doc[name]:
            raise StoreError(f"expected {{\"{name}\": \"...\"}}, found {doc!r:.80}", path)
        return doc[name]

    def _decode(self, kind: str, path: str, data: bytes) -> Any:
        doc = self._json(path, data)
        try:
            return self.codec.decode(kind, doc)
        except StoreError:
            raise
        except Exception as exc:  # noqa: BLE001 - any decoding failure is a corrupt record
            raise StoreError(f"does not hold a valid {kind.rstrip('s')} record: {exc}", path) from None

    # reads ------------------------------------------------------------------------------------
    def _get(self, path: str) -> bytes | None:
        """The node's bytes read now, its version remembered for later writes (None when absent)."""
        try:
            data, stat = self.client.get(path)
        except NoNodeError:
            with self._lock:
                self._versions.pop(path, None)
            return None
        except KazooException as exc:
            raise StoreError(f"cannot read: {exc!r}", path) from exc
        with self._lock:
            self._versions[path] = stat.version
        return data

    def read(self, kind: str, key: str) -> Any:
        """One record, read from ZooKeeper now (None when absent)."""
        path = self.path(kind, key)
        data = self._get(path)
        return None if data is None else self._decode(kind, path, data)

    # writes -----------------------------------------------------------------------------------
    def commit(self, changes: Sequence[Change]) -> None:
        """Apply `changes` atomically (one transaction) or raise; nothing is half-written."""
        if not changes:
            return
        with self._lock:
            txn = self.client.transaction()
            paths: list[str] = []
            if self._fence is not None:
                txn.check(self._fence, -1)
                paths.append(self._fence)
            for change in changes:
                paths.append(self._add(txn, change))
            self._commit_txn(txn, paths, fenced=self._fence is not None)

    def set_framework_id(self, value: str | None) -> None:
        self.commit([SetFrameworkId(value)])

    def put(self, kind: str, key: str, value: Any) -> None:
        self.commit([Put(kind, key, value)])

    def delete(self, kind: str, key: str) -> None:
        self.commit([Delete(kind, key)])

    def apply_config(self, config_id: str, config: Any) -> None:
        """Keep `config` as ``configs/<config_id>`` and make it the target, in one transaction."""
        self.commit([Put("configs", config_id, config), SetTargetConfig(config_id)])

    def tombstone(self) -> dict[str, Any] | None:
        """What `mark_uninstalled` left, read now; None for a service that was not uninstalled."""
        path = self.path(TOMBSTONE)
        data = self._get(path)
        if data is None:
            return None
        doc = self._json(path, data)
        return doc if isinstance(doc, dict) else {"value": doc}

    def mark_uninstalled(self, doc: Mapping[str, Any]) -> None:
        """Write the tombstone before anything is torn down: a scheduler that dies in between
        restarts uninstalled, never as a fresh empty install of the same name."""
        with self._lock:
            path = self.path(TOMBSTONE)
            txn = self.client.transaction()
            paths = [path]
            if self._fence:
                txn.check(self._fence, -1)
                paths.insert(0, self._fence)
            txn.create(path, _dumps(dict(doc)), acl=self.acl)
            self._commit_txn(txn, paths, fenced=bool(self._fence))

    def delete_all(self) -> None:
        """Remove the service's state (uninstall): everything but the tombstone; the leader node
        goes with it."""
        with self._lock:
            try:
                children = self.client.get_children(self.base)
            except NoNodeError:
                children = []
            except KazooException as exc:
                raise StoreError(f"cannot delete: {exc!r}", self.base) from exc
            for child in children:
                if child == TOMBSTONE:
                    continue
                try:
                    self.client.delete(f"{self.base}/{child}", recursive=True)
                except NoNodeError:
                    pass
                except KazooException as exc:
                    raise StoreError(f"cannot delete: {exc!r}", f"{self.base}/{child}") from exc
            self._versions.clear()

    def _add(self, txn: Any, change: Change) -> str:
        if isinstance(change, Put):
            path = self.path(change.kind, change.key)
            if change.kind not in KINDS:
                raise StoreError(f"cannot Put into {change.kind!r}", path)
            try:
                data = _dumps(self.codec.encode(change.kind, change.value))
            except (TypeError, ValueError) as exc:
                raise StoreError(f"cannot encode {change.value!r:.80}: {exc}", path) from exc
            self._put(txn, path, data)
        elif isinstance(change, Delete):
            path = self.path(change.kind, change.key)
            txn.delete(path, self._versions.get(path, -1))
        elif isinstance(change, SetFrameworkId):
            path = self.path("framework_id")
            if change.value is None:
                if path in self._versions:
                    txn.delete(path, self._versions[path])
                elif self.client.exists(path):
                    txn.delete(path, -1)
                else:
                    txn.check(self.base, -1)  # nothing to forget; keeps results aligned
            else:
                self._put(txn, path, _dumps({"value": change.value}))
        elif isinstance(change, SetTargetConfig):
            path = self.path("target_config")
            validate_key(change.config_id, "config")
            self._put(txn, path, _dumps({"id": change.config_id}))
        else:
            raise StoreError(f"unknown change {change!r}")
        return path

    def _put(self, txn: Any, path: str, data: bytes) -> None:
        if len(data) > 1_000_000:
            raise StoreError(f"record of {len(data)} bytes exceeds ZooKeeper's 1 MB node limit", path)
        if path in self._versions:
            txn.set_data(path, data, self._versions[path])
        else:
            txn.create(path, data, acl=self.acl)

    def _commit_txn(self, txn: Any, paths: list[str], fenced: bool) -> None:
        try:
            results = txn.commit()
        except KazooException as exc:
            raise StoreError(f"transaction failed: {exc!r}", self.base) from exc
        failures = [(p, r) for p, r in zip(paths, results)
                    if isinstance(r, Exception) and not isinstance(r, RolledBackError)]
        if failures:
            path, failure = failures[0]
            if fenced and path == self._fence:
                raise StoreConflict("leader lock node is gone; this instance may not write", path)
            if isinstance(failure, (BadVersionError, NodeExistsError, NoNodeError)):
                raise StoreConflict(f"changed by another writer ({type(failure).__name__}); "
                                    "transaction rolled back", path)
            raise StoreError(f"transaction rolled back: {failure!r}", path)
        ops = txn.operations
        for path, op, result in zip(paths, ops, results):
            name = type(op).__name__
            if name == "Create":
                self._versions[path] = 0
            elif name == "SetData":
                self._versions[path] = result.version
            elif name == "Delete":
                self._versions.pop(path, None)

