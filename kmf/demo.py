"""``kmf demo`` (``make demo``): kmf end to end on a local cluster, narrated.

Stages, each a small function that tests can call on its own:

1. :func:`check_config` — the service config (``config/local.yaml``) loads and validates;
2. :func:`start_local_cluster` — ZooKeeper, a master and 3 agents (``kmf local up``): localmesos, or
   Apache Mesos with ``--mesos apache``;
3. :func:`start_scheduler` — ``python -m scheduler --config …`` with ``KMF_MASTER``, ``KMF_ZK`` and
   ``KMF_API_PORT``; recorded in the local cluster's ``cluster.json`` so ``kmf local down`` stops it;
4. :func:`wait_for_deploy` — the deploy plan COMPLETE through ``GET /v1/plans/deploy``, with progress;
5. :func:`bootstrap_servers` — ``GET /v1/endpoints/broker``;
6. :func:`create_topics`, :func:`produce_sentences`, :func:`read_counts` — records in ``text``, word
   counts out of ``counts`` (written by the word-count app kmf runs);
7. :func:`kill_broker_and_watch` — kill -9 one broker's JVM, show kmf relaunching it (pod info
   before/after, time to recover) and the counts still there;
8. :func:`print_urls` — Mesos UI, scheduler web page, metrics.

At the end everything is stopped and nothing is left running, unless ``--keep-running`` is given
(then ``kmf local down --work-dir <work dir>`` stops it). A failing stage names the log to read
(logs stay in the work dir) and the command exits 1.
"""
from __future__ import annotations

import argparse
import collections
import contextlib
import json
import os
import sys
import time
import uuid
from pathlib import Path
from typing import Any, Callable, Iterable, Iterator, Mapping, Sequence, TextIO

import attrs

from kmfio.httpjson import request
from kmfwire.errors import KmfError
from kmfwire.waiting import wait_until

REPO = Path(__file__).resolve().parents[1]
DEFAULT_CONFIG = REPO / "config" / "local.yaml"
DEFAULT_WORK_DIR = Path(".cache") / "demo"
INPUT_TOPIC, OUTPUT_TOPIC = "text", "counts"

SENTENCES = (
    "Kafka runs on Mesos and Mesos runs Kafka",
    "the scheduler accepts offers and launches brokers",
    "every broker keeps its id and its data when it comes back",
    "the executor supervises the broker and the stream apps",
    "word count counts every word exactly once",
)


class DemoError(KmfError, RuntimeError):
    """A stage failed; `log_path` is the file that tells why."""

    def __init__(self, message: str, log_path: Path | None = None) -> None:
        super().__init__(message)
        self.log_path = log_path


# ---------------------------------------------------------------------------- narration


class Narrator:
    """Prints numbered stages with their duration, and progress lines inside them."""

    def __init__(self, out: TextIO = sys.stdout) -> None:
        self.out = out
        self.count = 0

    @contextlib.contextmanager
    def stage(self, title: str) -> Iterator[None]:
        self.count += 1
        started = time.monotonic()
        self.say(f"\n[{self.count}] {title}")
        try:
            yield
        except BaseException:
            self.say(f"    FAILED after {time.monotonic() - started:.1f}s")
            raise
        self.say(f"    done in {time.monotonic() - started:.1f}s")

    def say(self, text: str) -> None:
        print(text, file=self.out, flush=True)

    def info(self, text: str) -> None:
        self.say(f"    {text}")


# ---------------------------------------------------------------------------- HTTP


def http_json(url: str, method: str = "GET", body: Any = None, timeout: float = 5.0) -> tuple[int, Any]:
    """(status, decoded JSON or text) of a request; 4xx/5xx are returned, not raised."""
    data = json.dumps(body).encode() if body is not None else None
    reply = request(url, method, data, {"Content-Type": "application/json"} if data else {}, timeout)
    return reply.status, reply.json_or_text()


# ---------------------------------------------------------------------------- stages 1-3


# What the demo passes to the scheduler; stand-ins let the config validate before the cluster runs.
PLACEHOLDER_ENV = {"KMF_MASTER": "zk://127.0.0.1:2181/mesos", "KMF_ZK": "127.0.0.1:2181", "KMF_API_PORT": "0"}


def check_config(path: Path, env: Mapping[str, str] | None = None) -> str:
    """Load and validate the service config; returns a one-line summary. Variables the demo sets
    for the scheduler (KMF_MASTER, KMF_ZK, KMF_API_PORT) get stand-ins when unset."""
    if not path.is_file():
        raise DemoError(f"config file {path} does not exist")
    try:
        import config as config_pkg

        load_file = getattr(config_pkg, "load_file", None)
    except ImportError:
        load_file = None
    if load_file is None:
        return f"{path} (not validated: the config package has no load_file yet)"
    try:
        spec = load_file(str(path), env={**PLACEHOLDER_ENV, **(os.environ if env is None else env)})
    except ValueError as exc:  # config.ConfigError names file, line and field
        raise DemoError(f"{path} is not a valid kmf config:\n{exc}") from None
    apps = ", ".join(f"{a.name}×{a.count}" for a in getattr(spec, "apps", ())) or "no apps"
    kafka = spec.kafka
    return f"{path}: service {spec.name}, {kafka.brokers} brokers (Kafka {kafka.version}, {kafka.mode}), {apps}"


def start_local_cluster(work_dir: Path, agents: int, narrator: Narrator, engine: str = "local",
                        mesos_home: Path | None = None) -> dict[str, Any]:
    """ZooKeeper, a master and `agents` agents under `work_dir` (the `kmf local up` steps) of
    `engine` (``local`` or ``apache``)."""
    from localmesos import cli as local

    try:
        local.ensure_not_running(work_dir)
        local.engine_argvs(engine, mesos_home)  # no Apache Mesos install: fail before starting anything
    except local.ClusterError as exc:
        raise DemoError(f"{exc}" + (" (or pass another --work-dir)" if "already runs" in str(exc) else "")) from None
    try:
        state = local.up(agents, work_dir, out=_Indented(narrator), engine=engine, mesos_home=mesos_home)
    except (local.ClusterError, OSError, RuntimeError) as exc:
        local.down(work_dir, out=_Indented(narrator))
        raise DemoError(f"local cluster did not start: {exc}", _newest_log(work_dir)) from None
    return state


class _Indented:
    """A file-like object that narrates what `localmesos.cli` prints."""

    def __init__(self, narrator: Narrator) -> None:
        self.narrator = narrator

    def write(self, text: str) -> int:
        for line in text.splitlines():
            if line.strip():
                self.narrator.info(line)
        return len(text)

    def flush(self) -> None:
        pass


def _newest_log(work_dir: Path) -> Path | None:
    logs = sorted(work_dir.glob("**/*.log"), key=lambda p: p.stat().st_mtime)
    return logs[-1] if logs else None


def record_process(work_dir: Path, name: str, pid: int, **extra: Any) -> None:
    """Add a process to the local cluster's cluster.json so `kmf local down` stops it first."""
    path = work_dir.resolve() / "cluster.json"
    state = json.loads(path.read_text())
    state.setdefault("processes", []).append({"name": name, "pid": pid, **extra})
    path.write_text(json.dumps(state, indent=1))


@attrs.frozen
class Scheduler:
    pid: int
    api_url: str
    log_path: Path


def marathon_fetches(app_path: Path, config_path: Path) -> dict[str, Path]:
    """The local files for config/marathon.json's fetch URIs, by basename: its example repository
    is not reachable here, so the demo hands Marathon's fetcher the archives `make setup` built
    (.cache/artifacts) and the demo's config, as file:// URIs (the fetch itself is the same)."""
    from kmfwire import artifacts
    local = artifacts.served_dir()
    out: dict[str, Path] = {}
    for entry in json.loads(app_path.read_text()).get("fetch") or []:
        name = entry["uri"].rsplit("/", 1)[-1]
        if name.startswith("kmf-"):
            out[name] = local / artifacts.bundle_file()
        elif name.startswith("kafka-"):
            out[name] = local / name
        elif name.endswith(".yaml"):
            out[name] = config_path.resolve()
    missing = [str(p) for p in out.values() if not p.is_file()]
    if missing:
        raise DemoError(f"not built: {', '.join(missing)} (`make setup` builds the kmf bundle and Kafka archives)")
    return out


def start_scheduler(state: Mapping[str, Any], work_dir: Path, config_path: Path,
                    narrator: Narrator, timeout: float = 60.0) -> Scheduler:
    """Start the kmf scheduler from config/marathon.json as Marathon would (localmesos.marathon:
    PORT0, HOST, MESOS_SANDBOX with the fetched config, restarts, health check) and wait until its
    API answers."""
    from localmesos import procs

    # the scheduler runs on the cluster's own address, as Marathon runs it on an agent's: its API
    # and the page the Mesos UI links to (webui_url) are there
    host = state.get("host", "127.0.0.1")
    port = procs.free_port(host)
    marathon_dir = work_dir.resolve() / "scheduler"
    log_path = marathon_dir / "sandboxes" / "run-1" / "stderr"
    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(REPO), os.environ.get("PYTHONPATH")]))}
    argv = [sys.executable, "-m", "localmesos.marathon", "--app", str(REPO / "config" / "marathon.json"),
            "--work_dir", str(marathon_dir), "--host", host, "--port", str(port), "--health_scale", "0.1",
            "--env", f"KMF_MASTER={state['zk_url']}", "--env", f"KMF_ZK={state['zk']}",
            # where config/local.yaml's order pipeline jar is (its apps[].uris): built by make setup
            "--env", f"KMF_DEMO_ARTIFACTS={REPO / '.cache' / 'artifacts'}",
            *(arg for name, path in marathon_fetches(REPO / "config" / "marathon.json", config_path).items()
              for arg in ("--fetch", f"{name}={path}"))]
    proc = procs.spawn(argv, log_path=marathon_dir / "marathon-runner.log", cwd=REPO, env=env)
    record_process(work_dir, "scheduler", proc.pid, api_port=port)
    api_url = f"http://{host}:{port}"
    narrator.info(f"scheduler launched from config/marathon.json (runner pid {proc.pid}), "
                  f"API {api_url}, log {log_path}")

    def answering() -> Scheduler | None:
        if proc.poll() is not None:
            raise DemoError(f"the scheduler exited with code {proc.returncode}", log_path)
        try:
            status, body = http_json(api_url + "/v1/health", timeout=2)
            narrator.info(f"GET /v1/health → {status} {_short(body)}")
            return Scheduler(proc.pid, api_url, log_path)
        except OSError:
            return None

    scheduler = wait_until(answering, timeout, 0.25)
    if scheduler is None:
        raise DemoError(f"the scheduler API {api_url} did not answer within {timeout:g}s", log_path)
    return scheduler


def _short(body: Any, limit: int = 160) -> str:
    text = body if isinstance(body, str) else json.dumps(body, separators=(",", ":"))
    return text if len(text) <= limit else text[: limit - 3] + "..."


# ---------------------------------------------------------------------------- stage 4-5


def plan_steps(plan: Mapping[str, Any]) -> list[tuple[str, str, str]]:
    """(phase, step, status) of every step of a plan document (DC/OS SDK shape)."""
    rows = []
    for phase in plan.get("phases", []) or []:
        for step in phase.get("steps", []) or []:
            rows.append((str(phase.get("name", "?")), str(step.get("name", "?")),
                         str(step.get("status", "?")).upper()))
    return rows


def progress_line(plan: Mapping[str, Any], width: int = 24) -> str:
    steps = plan_steps(plan)
    done = sum(1 for _, _, status in steps if status == "COMPLETE")
    filled = int(width * done / len(steps)) if steps else 0
    detail = ", ".join(f"{step} {status}" for _, step, status in steps if status != "COMPLETE")
    return (f"[{'#' * filled}{'.' * (width - filled)}] {done}/{len(steps)} steps, plan "
            f"{str(plan.get('status', '?')).upper()}" + (f"; {detail}" if detail else ""))


def wait_for_deploy(api_url: str, narrator: Narrator, timeout: float = 600.0,
                    alive: Callable[[], bool] = lambda: True, log_path: Path | None = None,
                    clock: Callable[[], float] = time.monotonic) -> Mapping[str, Any]:
    """Poll `GET /v1/plans/deploy` until COMPLETE, printing each change of progress."""
    last = None

    def complete() -> Mapping[str, Any] | None:
        nonlocal last
        if not alive():
            raise DemoError("the scheduler exited while deploying", log_path)
        try:
            status, plan = http_json(api_url + "/v1/plans/deploy")
        except OSError as exc:
            status, plan = 0, str(exc)
        if isinstance(plan, Mapping):
            line = progress_line(plan)
            if line != last:
                narrator.info(line)
                last = line
            state = str(plan.get("status", "")).upper()
            if state == "COMPLETE":
                return plan
            if state == "ERROR":
                raise DemoError(f"the deploy plan is in ERROR: {_short(plan, 600)}", log_path)
        elif status != 0 and last != f"HTTP {status}":
            narrator.info(f"GET /v1/plans/deploy → {status} {_short(plan)}")
            last = f"HTTP {status}"
        return None

    plan = wait_until(complete, timeout, 1.0, clock=clock)
    if plan is None:
        raise DemoError(f"the deploy plan was not COMPLETE within {timeout:g}s (last: {last})", log_path)
    return plan


def parse_bootstrap(doc: Any) -> str:
    """Bootstrap servers from a `GET /v1/endpoints/broker` document: a `bootstrap_servers` (or
    `bootstrap`) string or list, else the `address` list (DC/OS SDK shape)."""
    if isinstance(doc, Mapping):
        for key in ("bootstrap_servers", "bootstrapServers", "bootstrap", "address", "addresses"):
            value = doc.get(key)
            if isinstance(value, str) and value.strip():
                return value.strip()
            if isinstance(value, list) and value:
                parts = []
                for item in value:
                    if isinstance(item, str):
                        parts.append(item)
                    elif isinstance(item, Mapping) and "host" in item and "port" in item:
                        parts.append(f"{item['host']}:{item['port']}")
                if parts:
                    return ",".join(parts)
    raise DemoError(f"GET /v1/endpoints/broker: no bootstrap servers in {_short(doc, 400)}")


def bootstrap_servers(api_url: str) -> str:
    status, doc = http_json(api_url + "/v1/endpoints/broker")
    if status != 200:
        raise DemoError(f"GET {api_url}/v1/endpoints/broker → {status} {_short(doc)}")
    return parse_bootstrap(doc)


# ---------------------------------------------------------------------------- stage 6: data


def create_topics(bootstrap: str, topics: Mapping[str, Mapping[str, str]], partitions: int = 3,
                  timeout: float = 60.0) -> list[str]:
    """Create the topics that do not exist yet (replication min(3, brokers)); returns those created."""
    from confluent_kafka import KafkaError, KafkaException
    from confluent_kafka.admin import AdminClient, NewTopic

    admin = AdminClient({"bootstrap.servers": bootstrap, "log_level": 0})
    try:
        metadata = admin.list_topics(timeout=15)
    except KafkaException as exc:
        raise DemoError(f"cannot reach Kafka at {bootstrap}: {exc}") from None
    replication = max(1, min(3, len(metadata.brokers)))
    wanted = [NewTopic(name, num_partitions=partitions, replication_factor=replication, config=dict(cfg))
              for name, cfg in topics.items() if name not in metadata.topics]
    created = []
    if wanted:
        for name, future in admin.create_topics(wanted, operation_timeout=timeout).items():
            try:
                future.result(timeout=timeout)
                created.append(name)
            except KafkaException as exc:
                if exc.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
                    raise DemoError(f"creating topic {name} on {bootstrap}: {exc}") from None
    if not wait_until(lambda: all(name in admin.list_topics(timeout=10).topics for name in topics), timeout, 0.2):
        raise DemoError(f"topics {sorted(topics)} not in the metadata of {bootstrap} after {timeout:g}s")
    return created


def expected_counts(sentences: Iterable[str]) -> dict[str, int]:
    from streams.counting import words

    return dict(collections.Counter(w for sentence in sentences for w in words(sentence)))


def produce_sentences(bootstrap: str, topic: str, sentences: Sequence[str], timeout: float = 60.0) -> int:
    """Send `sentences` with acks=all; returns how many were acknowledged (all, or DemoError)."""
    from confluent_kafka import Producer

    # log_level 0: librdkafka's connection-refused lines while a broker is down are expected here;
    # errors that matter still come back through delivery reports and poll()
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "enable.idempotence": True, "log_level": 0})
    errors: list[str] = []
    for sentence in sentences:
        producer.produce(topic, value=sentence.encode(),
                         on_delivery=lambda err, _msg: errors.append(str(err)) if err else None)
    left = producer.flush(timeout)
    if left or errors:
        raise DemoError(f"producing to {topic} on {bootstrap}: {left} unsent, errors {errors[:3]}")
    return len(sentences)


@attrs.frozen
class CountCheck:
    """How counted words compare with the expected counts: `short` words are still below their
    count (the app may not be done), `wrong` ones are above it or were never sent, as
    ``word: (counted, expected)``."""

    short: Mapping[str, tuple[int, int]]
    wrong: Mapping[str, tuple[int, int]]

    @property
    def exact(self) -> bool:
        return not self.short and not self.wrong


def compare_counts(counted: Mapping[str, int], expected: Mapping[str, int]) -> CountCheck:
    """Compare exactly: every expected word at exactly its count, and no other word. A count
    above the expected one is wrong, not "enough": doubled counts are what a word count that
    is not exactly-once produces."""
    short = {w: (counted.get(w, 0), c) for w, c in expected.items() if counted.get(w, 0) < c}
    wrong = {w: (n, expected.get(w, 0)) for w, n in counted.items() if n > expected.get(w, 0)}
    return CountCheck(short, wrong)


def read_counts(bootstrap: str, topic: str, expected: Mapping[str, int], timeout: float = 120.0,
                on_progress: Callable[[dict[str, int]], None] | None = None) -> dict[str, int]:
    """The latest count of every word in `topic` (read_committed, from the beginning) once they
    are exactly the `expected` ones (see :func:`compare_counts`) with every partition read to its
    end; DemoError when a count is too high (counts only grow: it cannot come right) or after
    `timeout`."""
    from confluent_kafka import Consumer, KafkaError

    from streams.counting import decode_count

    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"kmf-demo-{uuid.uuid4().hex[:8]}",
                         "auto.offset.reset": "earliest", "isolation.level": "read_committed",
                         "enable.auto.commit": False, "enable.partition.eof": True, "log_level": 0})
    consumer.subscribe([topic])
    latest: dict[str, int] = {}
    at_end: set[int] = set()  # partitions read to their end, until a new record comes
    deadline = time.monotonic() + timeout
    last_report = 0.0
    try:
        while True:
            for msg in consumer.consume(num_messages=1000, timeout=0.5):
                err, part = msg.error(), msg.partition()
                if err is not None:
                    if err.code() == KafkaError._PARTITION_EOF:
                        assert part is not None  # an end of partition names it
                        at_end.add(part)
                    continue
                key = msg.key()
                assert part is not None and key is not None  # a record of the app's output: keyed
                at_end.discard(part)
                latest[key.decode(errors="replace")] = decode_count(msg.value(), f"{topic}@{msg.offset()}")
            check = compare_counts(latest, expected)
            if check.wrong:
                raise DemoError(f"word counts in {topic} are wrong, more than was sent "
                                f"(word: (counted, expected)): {dict(check.wrong)}")
            assigned = {tp.partition for tp in consumer.assignment()}
            # Exact only counts once the log is read to its end: a higher count may follow.
            if check.exact and assigned and assigned <= at_end:
                return latest
            if on_progress is not None and time.monotonic() - last_report > 2:
                last_report = time.monotonic()
                on_progress(dict(latest))
            if time.monotonic() > deadline:
                detail = (f"(word: (counted, expected)): {dict(check.short)}" if check.short
                          else "(the counts are right so far, but its end was never reached)")
                raise DemoError(f"word counts in {topic} incomplete after {timeout:g}s {detail}")
    finally:
        consumer.close()


def counts_table(counts: Mapping[str, int], expected: Mapping[str, int]) -> list[str]:
    rows = sorted(expected, key=lambda w: (-expected[w], w))
    width = max((len(w) for w in rows), default=4)
    return [f"{word:<{width}}  {counts.get(word, 0):>4}" + ("" if counts.get(word, 0) == expected[word]
                                                          else f"  (expected {expected[word]})")
            for word in rows]


# ---------------------------------------------------------------------------- stage 7: a broker dies


@attrs.frozen
class ProcessInfo:
    pid: int
    argv: tuple[str, ...]
    cwd: str = ""
    executor_id: str = ""


def list_processes(proc_root: Path = Path("/proc")) -> list[ProcessInfo]:
    """Processes of this user with their argv, cwd and MESOS_EXECUTOR_ID (unreadable ones skipped)."""
    found = []
    for entry in proc_root.iterdir():
        if not entry.name.isdigit():
            continue
        try:
            argv = tuple(a.decode(errors="replace")
                         for a in (entry / "cmdline").read_bytes().split(b"\0") if a)
            cwd = os.readlink(entry / "cwd")
            environ = (entry / "environ").read_bytes().split(b"\0")
        except OSError:
            continue
        executor_id = next((e.split(b"=", 1)[1].decode(errors="replace") for e in environ
                            if e.startswith(b"MESOS_EXECUTOR_ID=")), "")
        found.append(ProcessInfo(int(entry.name), argv, cwd, executor_id))
    return found


def broker_jvms(processes: Iterable[ProcessInfo], under: Path, pod: str | None = None) -> list[int]:
    """Pids of Kafka broker JVMs (`kafka.Kafka` in argv) running under `under` (their cwd or a
    path in their argv), and, with `pod`, belonging to that pod (executor id `<pod>__…`)."""
    root = str(under.resolve())
    pids = []
    for proc in processes:
        if "kafka.Kafka" not in proc.argv:
            continue
        if not (proc.cwd.startswith(root) or any(root in arg for arg in proc.argv)):
            continue
        if pod is not None:
            token = f"{pod}__"
            if not (proc.executor_id.startswith(token) or f"/{token}" in proc.cwd
                    or any(f"/{token}" in arg for arg in proc.argv)):
                continue
        pids.append(proc.pid)
    return sorted(pids)


def pod_tasks(info: Any) -> list[dict[str, str]]:
    """(task id, state, agent) of every task in a `GET /v1/pod/<name>/info` document, whatever its
    nesting (DC/OS SDK: a list of {info: TaskInfo, status: TaskStatus})."""
    tasks: dict[str, dict[str, str]] = {}

    def task_id_of(node: Mapping[str, Any]) -> str | None:
        value = node.get("task_id", node.get("taskId"))
        if isinstance(value, Mapping):
            value = value.get("value")
        return value if isinstance(value, str) else None

    def walk(node: Any) -> None:
        if isinstance(node, Mapping):
            tid = task_id_of(node)
            if tid:
                row = tasks.setdefault(tid, {"task_id": tid, "state": "", "agent": ""})
                state = node.get("state")
                if isinstance(state, str) and state:
                    row["state"] = state
                agent = node.get("agent_id", node.get("slave_id", node.get("agent")))
                if isinstance(agent, Mapping):
                    agent = agent.get("value")
                if isinstance(agent, str) and agent:
                    row["agent"] = agent
            for value in node.values():
                walk(value)
        elif isinstance(node, list):
            for value in node:
                walk(value)

    walk(info)
    return list(tasks.values())


def pod_info(api_url: str, pod: str) -> list[dict[str, str]]:
    status, doc = http_json(f"{api_url}/v1/pod/{pod}/info")
    if status != 200:
        raise DemoError(f"GET /v1/pod/{pod}/info → {status} {_short(doc)}")
    return pod_tasks(doc)


def broker_in_metadata(bootstrap: str, broker_id: int) -> bool:
    from confluent_kafka import KafkaException
    from confluent_kafka.admin import AdminClient

    try:
        return broker_id in AdminClient({"bootstrap.servers": bootstrap, "log_level": 0}).list_topics(
            timeout=3).brokers
    except KafkaException:
        return False


def kill_broker_and_watch(api_url: str, work_dir: Path, pod: str, bootstrap: str, narrator: Narrator,
                          timeout: float = 300.0) -> float:
    """kill -9 the JVM of `pod`, wait until kmf has it running again (a new task, the broker back in
    the metadata); returns the seconds from kill to recovered."""
    before = pod_info(api_url, pod)
    for row in before:
        narrator.info(f"before: {pod} task {row['task_id']} {row['state']} on agent {row['agent']}")
    pids = broker_jvms(list_processes(), work_dir, pod)
    if len(pids) != 1:
        raise DemoError(f"expected one Kafka JVM of {pod} under {work_dir.resolve()}, found pids {pids}")
    broker_id = int(pod.rsplit("-", 1)[-1]) if pod.rsplit("-", 1)[-1].isdigit() else None
    old_ids = {row["task_id"] for row in before}
    narrator.info(f"kill -9 {pids[0]} (the JVM of {pod})")
    os.kill(pids[0], 9)
    killed_at = time.monotonic()
    seen_gone = False
    last = ""

    def recovered() -> float | None:
        nonlocal seen_gone, last
        elapsed = time.monotonic() - killed_at
        try:
            rows = pod_info(api_url, pod)
        except (DemoError, OSError):
            rows = []
        new = [r for r in rows if r["task_id"] not in old_ids]
        states = ", ".join(f"{r['task_id'][-8:]} {r['state']}" for r in rows) or "no task"
        if states != last:
            narrator.info(f"{elapsed:5.1f}s  {pod}: {states}")
            last = states
        if broker_id is not None and not broker_in_metadata(bootstrap, broker_id):
            seen_gone = True
        running = [r for r in new if r["state"] == "TASK_RUNNING"]
        if running and (broker_id is None or broker_in_metadata(bootstrap, broker_id)):
            for row in running:
                narrator.info(f"after:  {pod} task {row['task_id']} {row['state']} on agent {row['agent']}")
            if broker_id is not None:
                narrator.info(f"broker {broker_id} is back in the cluster metadata"
                              + ("" if seen_gone else " (its absence was too short to see)"))
            return time.monotonic() - killed_at
        return None

    seconds = wait_until(recovered, timeout, 0.5)
    if seconds is None:
        raise DemoError(f"{pod} not running again {timeout:g}s after its JVM was killed (last: {last})")
    return seconds


# ---------------------------------------------------------------------------- stage 8 and teardown


BURST_ROUNDS = 1000  # the demo's sentences this many times over: a backlog of ~50,000 records
# A group reading a transactional producer's topic stays a record or so behind per partition for
# good (the commit marker after the last record has an offset but is never consumed): "caught up"
# is a lag below this, as with kafka-consumer-groups' LAG column
CAUGHT_UP = 100


def autoscaled_burst(api_url: str, bootstrap: str, app: str, sentences: Sequence[str], narrator: Narrator,
                     timeout: float = 240.0) -> tuple[int, float]:
    """Produce `sentences` at once and narrate what the lag autoscaler does with the backlog: the
    group's lag (GET /v1/lag), the app's count and decisions (the plan `autoscale`), until the lag
    is gone (below CAUGHT_UP) with more instances than before. Returns (most instances seen, seconds)."""
    started = time.monotonic()
    first = app_count(api_url, app)
    produce_sentences(bootstrap, INPUT_TOPIC, sentences, timeout=120)
    narrator.info(f"{len(sentences):,} sentences produced in {time.monotonic() - started:.1f}s; "
                  f"{app} has {first} instance{'s' if first != 1 else ''}")
    most, shown, said = first, None, 0
    while time.monotonic() - started < timeout:
        _, lag_doc = http_json(api_url + "/v1/lag")
        _, plan = http_json(api_url + "/v1/plans/autoscale")
        lag = (lag_doc.get("apps", {}).get(app) or {}).get("lag") if isinstance(lag_doc, dict) else None
        phases = plan.get("phases", []) if isinstance(plan, dict) else []
        phase: dict[str, Any] = next((ph for ph in phases if ph.get("name") == app), {})
        count = phase.get("count", first)
        ready = sum(1 for i in range(count) if http_json(api_url + f"/v1/pod/{app}-{i}/info")[1].get("ready"))
        most = max(most, count)
        steps = phase.get("steps", [])
        for step in steps[said:]:
            narrator.info(f"autoscaler: {step['name']} instances: {step['message']}")
        said = len(steps)
        line = f"lag {lag if lag is not None else '?':>7} records, {ready} of {count} instances ready"
        if line != shown:
            narrator.info(f"{time.monotonic() - started:5.1f}s  {line}")
            shown = line
        if most > first and lag is not None and lag < CAUGHT_UP and ready == count:
            return most, time.monotonic() - started
        time.sleep(1.0)
    raise DemoError(f"the backlog was not worked off by more {app} instances within {timeout:g}s "
                    f"(see kmf plan show autoscale)")


def app_count(api_url: str, app: str) -> int:
    """How many instances of `app` the target config asks for."""
    status, body = http_json(api_url + "/v1/config/target")
    apps = body.get("config", {}).get("apps", []) if status == 200 and isinstance(body, dict) else []
    for a in apps:
        if a.get("name") == app:
            return int(a.get("count", 0))
    raise DemoError(f"the target config has no app {app!r} ({status}): {_short(body)}")


def print_urls(state: Mapping[str, Any], api_url: str | None, work_dir: Path, narrator: Narrator) -> None:
    narrator.info(f"Mesos UI:            {state.get('ui_url', state.get('master_url', '?'))}")
    if api_url:
        narrator.info(f"kmf web page:        {api_url}/")
        narrator.info(f"kmf API:             {api_url}/v1/plans/deploy")
        narrator.info(f"Prometheus metrics:  {api_url}/metrics")
    narrator.info(f"ZooKeeper:           {state.get('zk', '?')}")
    narrator.info(f"logs:                {work_dir.resolve()}")


def teardown(work_dir: Path, narrator: Narrator) -> None:
    from localmesos import cli as local

    local.down(work_dir, out=_Indented(narrator))


# ---------------------------------------------------------------------------- the whole story


@attrs.frozen
class DemoOptions:
    work_dir: Path = DEFAULT_WORK_DIR
    config: Path = DEFAULT_CONFIG
    agents: int = 3
    keep_running: bool = False
    kill_pod: str = "broker-1"
    deploy_timeout_s: float = 600.0
    engine: str = "local"  # or "apache": Apache Mesos instead of localmesos
    mesos_home: Path | None = None


def run_demo(options: DemoOptions, out: TextIO = sys.stdout) -> int:
    narrator = Narrator(out)
    work_dir = options.work_dir
    started = False
    failed = True
    try:
        with narrator.stage(f"checking the service config {options.config}"):
            narrator.info(check_config(options.config))
        which = "Apache Mesos" if options.engine == "apache" else "localmesos"
        with narrator.stage(f"starting a local Mesos cluster ({which}): ZooKeeper, a master, {options.agents} agents"):
            state = start_local_cluster(work_dir, options.agents, narrator, options.engine, options.mesos_home)
            started = True
        with narrator.stage("starting the kmf scheduler"):
            scheduler = start_scheduler(state, work_dir, options.config, narrator)
        from localmesos import procs

        with narrator.stage("waiting for the deploy plan (brokers, then stream apps) to be COMPLETE"):
            wait_for_deploy(scheduler.api_url, narrator, options.deploy_timeout_s,
                            alive=lambda: procs.pid_alive(scheduler.pid), log_path=scheduler.log_path)
        with narrator.stage("asking kmf for the brokers' endpoints"):
            bootstrap = bootstrap_servers(scheduler.api_url)
            narrator.info(f"bootstrap servers: {bootstrap}")
        with narrator.stage(f"creating topics {INPUT_TOPIC!r} and {OUTPUT_TOPIC!r}"):
            created = create_topics(bootstrap, {INPUT_TOPIC: {}, OUTPUT_TOPIC: {"cleanup.policy": "compact"}})
            narrator.info(f"created {created or 'nothing (they exist)'}")
        expected = expected_counts(SENTENCES)
        with narrator.stage(f"producing {len(SENTENCES)} sentences to {INPUT_TOPIC!r}"):
            for sentence in SENTENCES:
                narrator.info(f"> {sentence}")
            produce_sentences(bootstrap, INPUT_TOPIC, SENTENCES)
        with narrator.stage(f"reading word counts from {OUTPUT_TOPIC!r} (the word-count app kmf runs)"):
            counts = read_counts(bootstrap, OUTPUT_TOPIC, expected,
                                 on_progress=lambda c: narrator.info(f"... {sum(c.values())} words counted so far"))
            for line in counts_table(counts, expected):
                narrator.info(line)
        burst = list(SENTENCES) * BURST_ROUNDS
        with narrator.stage(f"a burst of {len(burst):,} sentences: the lag rises, kmf's autoscaler adds "
                            "word-count instances (apps[].autoscale), the lag falls"):
            most, seconds = autoscaled_burst(scheduler.api_url, bootstrap, "wordcount", burst, narrator)
            narrator.info(f"backlog worked off by {most} instances {seconds:.1f}s after the burst; "
                          "after cooldown_s of low lag it scales back in (kmf plan show autoscale)")
            expected = expected_counts(list(SENTENCES) + burst)
            counts = read_counts(bootstrap, OUTPUT_TOPIC, expected, timeout=120)
            narrator.info(f"every word counted exactly once across the scaling: {sum(counts.values()):,} words, "
                          f"e.g. {next(iter(sorted(counts)))!r} {counts[next(iter(sorted(counts)))]} times")
        with narrator.stage("order processing: a Kafka Streams pipeline kmf fetched by URI joins each order with its "
                            "customer's region and totals them per region and 10-second window, exactly once; a "
                            "Python service alerts on the large ones"):
            from kmf import demo_orders

            seconds = demo_orders.run_orders(scheduler.api_url, bootstrap, narrator)
            narrator.info(f"every order totalled once and every alert raised once, {seconds:.1f}s after the first order")
        with narrator.stage(f"killing {options.kill_pod}'s JVM with SIGKILL and watching kmf relaunch it"):
            seconds = kill_broker_and_watch(scheduler.api_url, work_dir, options.kill_pod, bootstrap, narrator)
            narrator.info(f"time to recover: {seconds:.1f}s")
            again = read_counts(bootstrap, OUTPUT_TOPIC, expected, timeout=60)
            narrator.info(f"counts still readable after the relaunch: {sum(again.values())} words")
        with narrator.stage("where to look"):
            print_urls(state, scheduler.api_url, work_dir, narrator)
        failed = False
        return 0
    except DemoError as exc:
        narrator.say(f"\nkmf demo failed: {exc}")
        if exc.log_path is not None:
            narrator.say(f"read: {exc.log_path}")
        elif started:
            narrator.say(f"logs are under {work_dir.resolve()}")
        return 1
    finally:
        if started and not options.keep_running:
            with narrator.stage("stopping everything (--keep-running keeps it up)"):
                teardown(work_dir, narrator)
            if failed:
                narrator.say(f"logs stay under {work_dir.resolve()}")
        elif started:
            narrator.say(f"\neverything is still running (--keep-running); stop it with:\n"
                         f"    .venv/bin/kmf local down --work-dir {work_dir}")


def register(subparsers: argparse._SubParsersAction) -> None:
    parser = subparsers.add_parser("demo", help="run kmf end to end on a local cluster, narrated")
    parser.add_argument("--work-dir", type=Path, default=DEFAULT_WORK_DIR,
                        help="where the local cluster keeps its state and logs (default: %(default)s)")
    parser.add_argument("--config", type=Path, default=DEFAULT_CONFIG,
                        help="service config to deploy (default: %(default)s)")
    parser.add_argument("--agents", type=int, default=3, help="number of agents (default: %(default)s)")
    parser.add_argument("--kill", dest="kill_pod", default="broker-1", metavar="POD",
                        help="the broker pod whose JVM is killed (default: %(default)s)")
    parser.add_argument("--deploy-timeout", type=float, default=600.0,
                        help="seconds to wait for the deploy plan (default: %(default)s)")
    parser.add_argument("--keep-running", action="store_true",
                        help="leave the local cluster and the service running at the end")
    from localmesos.cli import add_engine_options

    add_engine_options(parser)
    parser.set_defaults(func=_run)


def _run(args: argparse.Namespace) -> int:
    if args.agents < 1:
        print(f"kmf demo: --agents must be at least 1, got {args.agents}", file=sys.stderr)
        return 2
    return run_demo(DemoOptions(work_dir=args.work_dir, config=args.config, agents=args.agents,
                                keep_running=args.keep_running, kill_pod=args.kill_pod,
                                deploy_timeout_s=args.deploy_timeout, engine=args.mesos,
                                mesos_home=args.mesos_home))
