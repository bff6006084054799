"""localmesos' fetcher against a real HTTP server in this process and real files: what Mesos' fetcher
does with CommandInfo.URI (value, executable, extract, cache, output_file), and what the agent
reports when a fetch fails."""
from __future__ import annotations

import argparse
import base64
import http.server
import io
import os
import tarfile
import threading
import zipfile
from pathlib import Path

import pytest

from localmesos.agent.agent import Agent
from localmesos.agent.fetcher import FetcherCache, FetchError, fetch_all, parse_bytes
from tests.helpers.wait import wait_for

pytestmark = pytest.mark.timeout(60)


class Files(http.server.ThreadingHTTPServer):
    """Serves `root` and counts GETs per path."""

    def __init__(self, root: Path) -> None:
        self.root = root
        self.gets: dict[str, int] = {}
        files = self

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:  # noqa: N802
                files.gets[self.path] = files.gets.get(self.path, 0) + 1
                path = files.root / self.path.split("?", 1)[0].lstrip("/")
                if not path.is_file():
                    self.send_error(404)
                    return
                data = path.read_bytes()
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data)

            def log_message(self, *args) -> None:
                pass

        super().__init__(("127.0.0.1", 0), Handler)
        self.daemon_threads = True
        threading.Thread(target=self.serve_forever, daemon=True).start()

    def url(self, name: str) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/{name}"


@pytest.fixture
def served(tmp_path):
    root = tmp_path / "www"
    root.mkdir()
    server = Files(root)
    yield server
    server.shutdown()
    server.server_close()


def tree_archive(path: Path, top: str = "app") -> Path:
    """An archive of `top/hello.txt` and `top/bin/run.sh`, its kind chosen by the file name."""
    members = {f"{top}/hello.txt": b"hello\n", f"{top}/bin/run.sh": b"#!/bin/sh\necho run\n"}
    if path.name.endswith(".zip"):
        with zipfile.ZipFile(path, "w") as zf:
            for name, data in members.items():
                zf.writestr(name, data)
        return path
    mode = {".tgz": "w:gz", ".gz": "w:gz", ".tbz2": "w:bz2", ".bz2": "w:bz2", ".txz": "w:xz",
            ".xz": "w:xz", ".tar": "w"}[path.suffix]
    with tarfile.open(path, mode) as tf:
        for name, data in members.items():
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tf.addfile(info, io.BytesIO(data))
    return path


def run(uris, sandbox: Path, cache: FetcherCache | None = None) -> str:
    sandbox.mkdir(parents=True, exist_ok=True)
    log = io.StringIO()
    fetch_all(uris, sandbox, cache, log)
    return log.getvalue()


@pytest.mark.parametrize("name", ["a.tar", "a.tgz", "a.tar.gz", "a.tar.bz2", "a.tar.xz", "a.zip"])
def test_archives_of_every_kind_are_extracted_into_the_sandbox_and_kept(tmp_path, served, name):
    tree_archive(served.root / name)
    log = run([{"value": served.url(name)}], tmp_path / "sb")  # extract defaults to true
    assert (tmp_path / "sb" / "app" / "hello.txt").read_text() == "hello\n"
    assert (tmp_path / "sb" / name).is_file()  # Mesos keeps the downloaded archive
    assert f"Fetching URI '{served.url(name)}'" in log and "Extracted" in log


def test_a_bare_gz_is_decompressed_beside_it(tmp_path, served):
    import gzip
    (served.root / "notes.txt.gz").write_bytes(gzip.compress(b"plain\n"))
    run([{"value": served.url("notes.txt.gz")}], tmp_path / "sb")
    assert (tmp_path / "sb" / "notes.txt").read_text() == "plain\n" and (tmp_path / "sb" / "notes.txt.gz").is_file()


def test_extract_false_only_copies(tmp_path, served):
    tree_archive(served.root / "a.tar.gz")
    run([{"value": served.url("a.tar.gz"), "extract": False}], tmp_path / "sb")
    assert (tmp_path / "sb" / "a.tar.gz").is_file() and not (tmp_path / "sb" / "app").exists()


def test_a_plain_file_with_extract_is_copied_with_a_warning(tmp_path, served):
    (served.root / "notes.txt").write_text("n")
    log = run([{"value": served.url("notes.txt")}], tmp_path / "sb")
    assert (tmp_path / "sb" / "notes.txt").read_text() == "n"
    assert "does not seem to be an archive" in log


def test_file_uri_and_absolute_path_are_copied(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    (src / "one.txt").write_text("1")
    (src / "two.txt").write_text("2")
    run([{"value": f"file://{src / 'one.txt'}"}, {"value": str(src / "two.txt")}], tmp_path / "sb")
    assert (tmp_path / "sb" / "one.txt").read_text() == "1"
    assert (tmp_path / "sb" / "two.txt").read_text() == "2"


def test_executable_is_chmodded_and_never_extracted(tmp_path, served):
    tree_archive(served.root / "tool.tar.gz")
    (served.root / "run.sh").write_text("#!/bin/sh\n")
    run([{"value": served.url("run.sh"), "executable": True},
         {"value": served.url("tool.tar.gz"), "executable": True, "extract": True}], tmp_path / "sb")
    assert os.stat(tmp_path / "sb" / "run.sh").st_mode & 0o777 == 0o755
    assert os.access(tmp_path / "sb" / "tool.tar.gz", os.X_OK) and not (tmp_path / "sb" / "app").exists()


def test_output_file_names_the_copy_and_makes_its_folders(tmp_path, served):
    (served.root / "cfg.yaml").write_text("x: 1\n")
    run([{"value": served.url("cfg.yaml") + "?v=3", "output_file": "conf/kmf.yaml"}], tmp_path / "sb")
    assert (tmp_path / "sb" / "conf" / "kmf.yaml").read_text() == "x: 1\n"
    with pytest.raises(FetchError, match="relative path inside the sandbox"):
        run([{"value": served.url("cfg.yaml"), "output_file": "../escape"}], tmp_path / "sb2")


def test_cache_downloads_once_and_serves_relaunches_from_the_agent(tmp_path, served):
    tree_archive(served.root / "bundle.tar.gz")
    (served.root / "plain.bin").write_bytes(b"\0" * 1000)
    cache = FetcherCache(tmp_path / "cache", parse_bytes("1MB"))
    uris = [{"value": served.url("bundle.tar.gz"), "cache": True},
            {"value": served.url("plain.bin"), "cache": True, "extract": False}]
    run(uris, tmp_path / "sb1", cache)
    log = run(uris, tmp_path / "sb2", cache)
    assert served.gets == {"/bundle.tar.gz": 1, "/plain.bin": 1}
    assert (cache.hits, cache.misses) == (2, 2)
    assert f"Fetching URI '{served.url('bundle.tar.gz')}' from cache" in log
    assert f"Cache action for '{served.url('bundle.tar.gz')}': RETRIEVE_FROM_CACHE" in log
    assert (tmp_path / "sb2" / "app" / "hello.txt").is_file() and (tmp_path / "sb2" / "plain.bin").stat().st_size == 1000
    # a cached archive is extracted straight from the cache, not copied into the sandbox first
    assert not (tmp_path / "sb2" / "bundle.tar.gz").exists()
    # without cache: true the cache is not used even though the URI is in it
    run([{"value": served.url("plain.bin"), "extract": False}], tmp_path / "sb3", cache)
    assert served.gets["/plain.bin"] == 2


def test_launches_fetching_one_uri_at_once_download_it_once(tmp_path, served):
    tree_archive(served.root / "bundle.tar.gz")
    cache = FetcherCache(tmp_path / "cache", parse_bytes("1MB"))
    errors = []

    def launch(i):
        try:
            run([{"value": served.url("bundle.tar.gz"), "cache": True}], tmp_path / f"sb{i}", cache)
        except Exception as exc:  # noqa: BLE001 - reported below
            errors.append(exc)
    threads = [threading.Thread(target=launch, args=(i,)) for i in range(4)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(30)
    assert not errors and served.gets == {"/bundle.tar.gz": 1} and (cache.hits, cache.misses) == (3, 1)
    assert all((tmp_path / f"sb{i}" / "app" / "hello.txt").is_file() for i in range(4))


def test_cache_is_bounded_least_recently_used_first(tmp_path, served):
    for name in ("a.bin", "b.bin", "c.bin"):
        (served.root / name).write_bytes(b"x" * 400)
    cache = FetcherCache(tmp_path / "cache", 1000)
    for name in ("a.bin", "b.bin", "a.bin", "c.bin"):  # c evicts b, the least recently used
        run([{"value": served.url(name), "cache": True}], tmp_path / f"sb-{name}", cache)
    run([{"value": served.url("a.bin"), "cache": True}], tmp_path / "sb-x", cache)
    run([{"value": served.url("b.bin"), "cache": True}], tmp_path / "sb-y", cache)
    assert served.gets == {"/a.bin": 1, "/b.bin": 2, "/c.bin": 1}
    assert sum(p.stat().st_size for p in (tmp_path / "cache").iterdir()) <= 1000


def test_a_file_larger_than_the_cache_bypasses_it(tmp_path, served):
    (served.root / "big.bin").write_bytes(b"x" * 2000)
    cache = FetcherCache(tmp_path / "cache", 1000)
    log = run([{"value": served.url("big.bin"), "cache": True}], tmp_path / "sb", cache)
    assert (tmp_path / "sb" / "big.bin").stat().st_size == 2000 and "larger than the fetcher cache" in log
    assert list((tmp_path / "cache").iterdir()) == []


@pytest.mark.parametrize("uri, why", [
    ("http://127.0.0.1:{port}/missing.tar.gz", "received HTTP return code 404"),
    ("http://127.0.0.1:1/closed.tar.gz", "Error downloading resource"),
    ("file:///nonexistent/x.tar.gz", "Failed to copy"),
    ("relative/x.tar.gz", "relative path"),
    ("ftp://example.invalid/x", "Unsupported URI scheme"),
])
def test_failures_name_the_uri_and_the_reason(tmp_path, served, uri, why):
    uri = uri.format(port=served.server_address[1])
    with pytest.raises(FetchError, match=why) as err:
        run([{"value": uri}], tmp_path / "sb")
    assert str(err.value).startswith(f"Failed to fetch '{uri}'")
    assert not list((tmp_path / "sb").glob(".*.part"))


def test_a_corrupt_archive_fails_the_fetch(tmp_path, served):
    (served.root / "bad.tar.gz").write_bytes(b"not gzip at all")
    with pytest.raises(FetchError, match="Failed to extract archive"):
        run([{"value": served.url("bad.tar.gz")}], tmp_path / "sb")


def agent_flags(work_dir: Path) -> argparse.Namespace:
    return argparse.Namespace(work_dir=str(work_dir), ip="127.0.0.1", port=5051, hostname=None,
                              resources="cpus:1;mem:512", attributes="", executor_shutdown_grace_period=1.0,
                              recovery_timeout=10.0, fetcher_cache_size="100MB", fetcher_cache_dir=None)


def test_agent_fails_the_task_as_mesos_does_when_a_uri_cannot_be_fetched(tmp_path, served):
    agent = Agent(agent_flags(tmp_path / "agent"))
    task = {"name": "t", "task_id": {"value": "t1"}, "agent_id": {"value": "a"},
            "executor": {"executor_id": {"value": "e1"},
                         "command": {"value": "true", "uris": [{"value": served.url("nope.tar.gz")}]}}}
    agent.run_task({"framework_info": {"id": {"value": "fw"}}, "task": task})

    def failed():
        entry = agent.tasks.get(("fw", "t1"))
        return entry is not None and entry.state == "TASK_FAILED" and entry.updates[-1]
    status = wait_for(failed, timeout=10, what="TASK_FAILED after the fetch")
    container = next(iter(agent.completed_executors), None)
    assert status["source"] == "SOURCE_AGENT" and status["reason"] == "REASON_CONTAINER_LAUNCH_FAILED"
    assert status["message"].startswith("Failed to launch container: Failed to fetch all URIs for container '")
    assert status["message"].endswith("': exited with status 1"), status["message"]
    assert ("fw", "e1") not in agent.executors and container is None
    sandboxes = list((tmp_path / "agent" / "slaves").glob("*/frameworks/fw/executors/e1/runs/*-*"))
    stderr = sandboxes[0].joinpath("stderr").read_text()
    assert f"Fetching URI '{served.url('nope.tar.gz')}'" in stderr and "HTTP return code 404" in stderr
    assert base64.b64decode(status["uuid"])
