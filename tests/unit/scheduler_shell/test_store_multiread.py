"""Loading the store with multiRead gives what node-by-node reads gave (issue 14 item 6).

A fake kazoo client answers getData and multiRead from a dict, serialising multiRead answers as a
ZooKeeper server does, so the request's bytes and the parsing of the answer are checked too. (The
restart benchmark and tests/integration/scheduler/test_store.py run it against a real server.)
"""
from __future__ import annotations

import struct

import pytest
from kazoo.exceptions import ConnectionLoss, NoNodeError
from kazoo.protocol.states import ZnodeStat

from scheduler.shell import store as store_mod
from scheduler.shell.store import StateStore, _MultiRead

pytestmark = pytest.mark.timeout(60)


class Result:
    def __init__(self) -> None:
        self.value: object = None
        self.error: BaseException | None = None

    def set(self, value: object) -> None:
        self.value = value

    def set_exception(self, error: BaseException) -> None:
        self.error = error

    def get(self, timeout: float | None = None) -> object:
        if self.error is not None:
            raise self.error
        return self.value


class Handler:
    def async_result(self) -> Result:
        return Result()


def _stat(version: int) -> ZnodeStat:
    return ZnodeStat(1, 2, 3, 4, version, 0, 0, 0, 7, 0, 5)


class FakeZk:
    """Nodes in a dict; `srvr` says `version`; multiRead answered from the request's bytes."""

    def __init__(self, nodes: dict[str, bytes], version: str = "3.8.4", multi: str = "ok") -> None:
        self.nodes = nodes
        self.version = version
        self.multi = multi
        self.chroot = ""
        self.handler = Handler()
        self.gets = 0
        self.multi_reads = 0

    def command(self, cmd: bytes) -> str:
        assert cmd == b"srvr"
        if self.version == "none":
            raise ConnectionLoss("no answer")
        return f"Zookeeper version: {self.version}-abc, built on 2024-01-01\nLatency min/avg/max: 0/0/0\n"

    def get(self, path: str):
        if path not in self.nodes:
            raise NoNodeError()
        return self.nodes[path], _stat(len(path))

    def get_async(self, path: str) -> Result:
        self.gets += 1
        result = Result()
        try:
            result.set(self.get(path))
        except NoNodeError as exc:
            result.set_exception(exc)
        return result

    def get_children(self, path: str) -> list[str]:
        prefix = path + "/"
        return [p[len(prefix):] for p in self.nodes if p.startswith(prefix) and "/" not in p[len(prefix):]]

    def _call(self, request: _MultiRead, result: Result) -> None:
        self.multi_reads += 1
        if self.multi == "closes":
            result.set_exception(ConnectionLoss())
            return
        paths = _parse_request(bytes(request.serialize()))
        assert paths == list(request.paths)
        result.set(_MultiRead.deserialize(_answer(self, paths), 0))


def _parse_request(raw: bytes) -> list[str]:
    """The getData paths of a multiRead request body, as the server reads them."""
    paths, offset = [], 0
    while True:
        kind, done, err = struct.unpack_from("!iBi", raw, offset)
        offset += 9
        if done:
            assert (kind, err) == (-1, -1) and offset == len(raw)
            return paths
        assert (kind, err) == (4, -1)
        (length,) = struct.unpack_from("!i", raw, offset)
        paths.append(raw[offset + 4:offset + 4 + length].decode())
        offset += 4 + length
        assert raw[offset] == 0  # no watch
        offset += 1


def _answer(zk: FakeZk, paths: list[str]) -> bytes:
    """A server's multiRead response: per path a getData result or an error result."""
    out = bytearray()
    for path in paths:
        if path in zk.nodes:
            data = zk.nodes[path]
            out += struct.pack("!iBi", 4, 0, 0) + struct.pack("!i", len(data)) + data
            out += struct.pack("!qqqqiiiqiiq", *_stat(len(path)))
        else:
            out += struct.pack("!iBi", -1, 0, NoNodeError.code) + struct.pack("!i", NoNodeError.code)
    return bytes(out + struct.pack("!iBi", -1, 1, -1))


def _nodes(tasks: int) -> dict[str, bytes]:
    base = "/kmf/svc"
    nodes = {f"{base}/schema_version": b"1", f"{base}/framework_id": b'{"value": "fw-1"}',
             f"{base}/target_config": b'{"id": "c1"}', f"{base}/configs/c1": b'{"a": [1, 2.5]}',
             f"{base}/plans/deploy": b'{"x": null}', f"{base}/properties/cluster_id": b'"abc"',
             f"{base}/properties/empty": b'""'}
    for kind in ("configs", "tasks", "properties", "plans"):
        nodes[f"{base}/{kind}"] = b""
    for i in range(tasks):
        nodes[f"{base}/tasks/app-{i}"] = b'{"pod": "app-%d", "kind": "stream", "launches": %d}' % (i, i)
    return nodes


@pytest.mark.parametrize("version", ["3.6.0", "3.8.4", "3.10.1"])
def test_multi_read_loads_what_plain_reads_load(version):
    zk, plain = FakeZk(_nodes(345), version), FakeZk(_nodes(345), "3.5.9")
    bulk_store, plain_store = StateStore(zk, "svc"), StateStore(plain, "svc")
    loaded, expected = bulk_store.load(), plain_store.load()
    assert loaded == expected
    assert list(loaded.tasks) == list(expected.tasks) and list(loaded.properties) == list(expected.properties)
    assert bulk_store._versions == plain_store._versions
    assert zk.multi_reads == 4 and zk.gets == 2 + 2  # tasks+properties in 4 requests; framework, target, config, plan
    assert plain.multi_reads == 0 and plain.gets == 345 + 2 + 2 + 2


def test_a_node_deleted_after_the_listing_is_left_out_either_way():
    for version in ("3.8.4", "3.4.14"):
        zk = FakeZk(_nodes(5), version)
        zk.get_children = _with_gone_child(zk.get_children)  # type: ignore[method-assign]
        assert sorted(StateStore(zk, "svc").load().tasks) == [f"app-{i}" for i in range(5)]


@pytest.mark.parametrize("version", ["3.5.9", "3.4.14", "none", "garbage"])
def test_servers_that_may_not_know_multi_read_get_plain_reads(version):
    zk = FakeZk(_nodes(20), version)
    assert len(StateStore(zk, "svc").load().tasks) == 20
    assert zk.multi_reads == 0


def test_a_failed_multi_read_falls_back_to_plain_reads(monkeypatch):
    monkeypatch.setattr(store_mod, "_READ_WINDOW", 10)
    zk = FakeZk(_nodes(25), multi="closes")
    loaded = StateStore(zk, "svc").load()
    assert len(loaded.tasks) == 25 and loaded == StateStore(FakeZk(_nodes(25), "3.4.0"), "svc").load()
    assert zk.multi_reads == 1  # the first window only; the rest node by node


def test_chroot_is_put_in_front_of_the_paths_read():
    zk = FakeZk({"/ch" + k: v for k, v in _nodes(3).items()})
    zk.chroot = "/ch"
    plain_get = zk.get

    def get(path: str):  # plain reads go through kazoo's own chroot handling: emulate it
        return plain_get(path if path.startswith("/ch/") else "/ch" + path)
    zk.get = get  # type: ignore[method-assign]
    zk.get_children = lambda path, inner=zk.get_children: inner("/ch" + path)  # type: ignore[method-assign]
    assert sorted(StateStore(zk, "svc").load().tasks) == ["app-0", "app-1", "app-2"]
    assert zk.multi_reads == 1  # the 3 tasks and 2 properties, read as /ch/kmf/svc/...


def _with_gone_child(listed):
    """`get_children` that also lists a task node deleted before it is read."""
    return lambda path: listed(path) + (["app-gone"] if path.endswith("/tasks") else [])
