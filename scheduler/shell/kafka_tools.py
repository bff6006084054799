"""Kafka's own partition-reassignment and log-dirs tools, run from the scheduler.

confluent-kafka has no partition-reassignment call, so `kmf rebalance`, drain scale-in and
decommission run Kafka's tools from the Kafka archive the scheduler already serves to agents
(``kafka-<version>.tar.gz``: ``kafka/<version>/{libs,config}``, see kmfwire.artifacts):

* ``org.apache.kafka.tools.reassign.ReassignPartitionsCommand`` with ``--execute [--throttle N]``,
  ``--verify`` and ``--cancel`` on a ``--reassignment-json-file``;
* ``org.apache.kafka.tools.LogDirsCommand --describe --broker-list ...``, which prints JSON.

A verify that finds no move in progress and a cancel both remove the throttles (see `verify`).
Both tools are in ``kafka-tools-<version>.jar``, which the 4.x runtimes carry (the 3.9 runtime does not:
its archive is refused with a message saying so; the 4.x tools' Admin calls should serve a 3.9
cluster as well, which is not tested here).

This is the I/O shell: it unpacks the archive once, runs ``java -cp '<libs>/*' <class> ...`` in a
process group of its own with a timeout (the group is killed when it runs over), parses what the
tools print and raises KafkaToolsError when one fails. It decides nothing.
"""
from __future__ import annotations

import json
import logging
import os
import re
import shutil
import signal
import subprocess
import tarfile
import tempfile
import time
from pathlib import Path
from typing import Iterable, Mapping, Sequence

import attrs

from kmfwire.artifacts import KAFKA_FOLDER
from scheduler.shell.artifacts import sha256_of
from scheduler.shell.errors import ShellError

log = logging.getLogger(__name__)

REASSIGN_MAIN = "org.apache.kafka.tools.reassign.ReassignPartitionsCommand"
LOG_DIRS_MAIN = "org.apache.kafka.tools.LogDirsCommand"
FEATURES_MAIN = "org.apache.kafka.tools.FeatureCommand"
CLUSTER_MAIN = "org.apache.kafka.tools.ClusterTool"
# what Kafka answers when asked to unregister a broker id it has no registration for
NOT_REGISTERED = re.compile(r"not currently registered|BrokerIdNotRegistered|BROKER_ID_NOT_REGISTERED", re.I)
JAVA_MISSING = "kmf rebalance needs Java 17 on the scheduler's host: set JAVA_HOME or put java on PATH"
TOOL_HEAP_MB = 256
COMPLETE = "complete"
IN_PROGRESS = "in progress"

_TAIL_LINES = 4
_LOG_STAMP = re.compile(r"^\[\d{4}-\d\d-\d\d [\d:,.]+\] ")
_ARCHIVE_SUFFIX = re.compile(r"\.(tar\.gz|tgz|tar)$")
# ReassignPartitionsCommand --verify, one line per partition (Kafka 3.7 .. 4.3):
#   "Reassignment of partition t-0 is completed."
#   "Reassignment of partition t-0 is still in progress."
#   "There is no active reassignment of partition t-0, but replica set is 0,1 rather than 0,1,2."
# FeatureCommand describe (Kafka 3.7 .. 4.3), one tab-separated line per feature:
#   "Feature: metadata.version\tSupportedMinVersion: 3.3-IV3\tSupportedMaxVersion: 4.3-IV0\t
#    FinalizedVersionLevel: 4.2-IV1\tEpoch: 21"
_FEATURE_LINE = re.compile(r"^Feature: (?P<name>\S+)\s.*?\bFinalizedVersionLevel: (?P<level>\S+)")
_VERIFY_LINE = re.compile(r"^Reassignment of partition (?P<tp>\S+) is (?P<state>completed|still in progress)\.$")
_VERIFY_OTHER = re.compile(r"\bpartition (?P<tp>\S+?),? ")


class KafkaToolsError(ShellError):
    """A Kafka tool could not be run or failed; the message names the tool run and quotes the last
    lines it printed."""


def _replica_ids(value: Iterable[int]) -> tuple[int, ...]:
    return tuple(value)


@attrs.frozen
class Move:
    """One partition's target replica list, preferred leader first."""

    topic: str
    partition: int
    replicas: tuple[int, ...] = attrs.field(converter=_replica_ids)

    def __attrs_post_init__(self) -> None:
        if not self.topic or self.partition < 0:
            raise ValueError(f"a move needs a topic and a partition >= 0, not {self.topic!r}-{self.partition}")
        if not self.replicas or len(set(self.replicas)) != len(self.replicas):
            raise ValueError(f"{self.topic}-{self.partition}: replicas {list(self.replicas)} must be distinct "
                             "and not empty")

    @property
    def key(self) -> tuple[str, int]:
        return (self.topic, self.partition)


def _find_java(java: str | None) -> str:
    if java is not None:
        candidates = [java]
    else:
        candidates = []
        home = os.environ.get("JAVA_HOME")
        if home:
            candidates.append(str(Path(home) / "bin" / "java"))
        on_path = shutil.which("java")
        if on_path:
            candidates.append(on_path)
    for candidate in candidates:
        path = shutil.which(candidate) if os.sep not in candidate else candidate
        if path and os.path.isfile(path) and os.access(path, os.X_OK):
            return path
    tried = ", ".join(candidates) or "JAVA_HOME unset, no java on PATH"
    raise KafkaToolsError(f"{JAVA_MISSING} (tried: {tried})")


def _unpack(archive: Path, work_dir: Path) -> Path:
    """`archive` unpacked under `work_dir/<name>-<sha256 prefix>/`, once: it is unpacked into a
    temporary folder beside it and renamed into place, so a half-unpacked folder is never used and
    a second KafkaTools (or another scheduler process) on the same `work_dir` reuses it."""
    if not archive.is_file():
        raise KafkaToolsError(f"the Kafka archive {archive} is missing (`make setup` builds it into "
                              ".cache/artifacts)")
    name = _ARCHIVE_SUFFIX.sub("", archive.name)
    target = work_dir / f"{name}-{sha256_of(archive)[:16]}"
    if target.is_dir():
        return target
    work_dir.mkdir(parents=True, exist_ok=True)
    temp = Path(tempfile.mkdtemp(prefix=f".{name}-", dir=work_dir))
    try:
        started = time.monotonic()
        with tarfile.open(archive) as tar:
            tar.extractall(temp, filter="data")
        try:
            os.rename(temp, target)
        except OSError:
            if not target.is_dir():  # anything but "somebody else was first"
                raise
        else:
            log.info("unpacked %s into %s in %.1f s", archive, target, time.monotonic() - started)
    except (OSError, tarfile.TarError) as exc:
        raise KafkaToolsError(f"cannot unpack the Kafka archive {archive} into {work_dir}: {exc}") from exc
    finally:
        shutil.rmtree(temp, ignore_errors=True)
    return target


def _tail(output: str) -> str:
    """The last distinct lines a tool printed, without Java stack frames or log timestamps (a
    client that cannot connect logs the same warning again and again)."""
    lines: list[str] = []
    for raw in output.splitlines():
        line = _LOG_STAMP.sub("", raw.strip())
        if line and not line.startswith(("at ", "... ")):
            if line in lines:
                lines.remove(line)
            lines.append(line)
    return " | ".join(lines[-_TAIL_LINES:]) or "(no output)"


def _properties(props: Mapping[str, str]) -> str:
    def escape(text: str) -> str:
        return (text.replace("\\", "\\\\").replace("\n", "\\n").replace("=", "\\=")
                .replace(":", "\\:").replace("#", "\\#").replace("!", "\\!"))
    return "".join(f"{escape(k).replace(' ', chr(92) + ' ')}={escape(v)}\n" for k, v in props.items())


def _reassignment_json(moves: Sequence[Move]) -> str:
    if not moves:
        raise ValueError("a reassignment needs at least one move")
    keys = [move.key for move in moves]
    if len(set(keys)) != len(keys):
        raise ValueError(f"a partition is moved twice in {keys}")
    return json.dumps({"version": 1, "partitions": [
        {"topic": m.topic, "partition": m.partition, "replicas": list(m.replicas)} for m in moves]})


def parse_verify(output: str, moves: Sequence[Move]) -> dict[tuple[str, int], str]:
    """Each moved partition's state in `--verify` output: COMPLETE, IN_PROGRESS or the tool's own
    line about it (e.g. "There is no active reassignment of partition t-0, but replica set is 0,1
    rather than 0,1,2."). A partition the output does not mention raises KafkaToolsError."""
    by_name = {f"{m.topic}-{m.partition}": m.key for m in moves}
    states: dict[tuple[str, int], str] = {}
    for raw in output.splitlines():
        line = raw.strip()
        match = _VERIFY_LINE.match(line)
        if match and match["tp"] in by_name:
            states[by_name[match["tp"]]] = COMPLETE if match["state"] == "completed" else IN_PROGRESS
            continue
        other = _VERIFY_OTHER.search(line)
        if other and other["tp"] in by_name and by_name[other["tp"]] not in states:
            states[by_name[other["tp"]]] = line
    missing = sorted(name for name, key in by_name.items() if key not in states)
    if missing:
        raise KafkaToolsError(f"ReassignPartitionsCommand --verify said nothing about {', '.join(missing)} "
                              f"(last lines: {_tail(output)})")
    return states


def parse_features(output: str) -> dict[str, str]:
    """Each feature's finalised level from FeatureCommand's `describe` (features never finalised
    are listed with level 0 or "-")."""
    out = {}
    for line in output.splitlines():
        m = _FEATURE_LINE.match(line.strip())
        if m:
            out[m.group("name")] = m.group("level")
    return out


def parse_log_dirs(output: str) -> dict[tuple[str, int], int]:
    """Each partition's largest replica size in bytes from LogDirsCommand's JSON line (future
    replicas, those being moved between a broker's log dirs, count too)."""
    document = None
    for line in reversed(output.splitlines()):
        if line.strip().startswith("{"):
            try:
                document = json.loads(line)
            except ValueError:
                continue
            break
    if not isinstance(document, dict) or not isinstance(document.get("brokers"), list):
        raise KafkaToolsError(f"LogDirsCommand printed no JSON log-dirs description (last lines: {_tail(output)})")
    sizes: dict[tuple[str, int], int] = {}
    for broker in document["brokers"]:
        for log_dir in broker.get("logDirs") or []:
            if log_dir.get("error"):
                log.warning("broker %s log dir %s: %s", broker.get("broker"), log_dir.get("logDir"),
                            log_dir["error"])
            for item in log_dir.get("partitions") or []:
                topic, _, partition = str(item["partition"]).rpartition("-")
                key = (topic, int(partition))
                sizes[key] = max(sizes.get(key, 0), int(item["size"]))
    return sizes


class KafkaTools:
    """Kafka's reassignment and log-dirs tools from one Kafka archive (see the module doc)."""

    def __init__(self, archive: Path, work_dir: Path, java: str | None = None, timeout_s: float = 120.0) -> None:
        self.java = _find_java(java)
        self.timeout_s = timeout_s
        self.work_dir = Path(work_dir)
        root = _unpack(Path(archive), self.work_dir)
        homes = sorted(p.parent for p in (root / KAFKA_FOLDER).glob("*/libs") if p.is_dir())
        if len(homes) != 1:
            raise KafkaToolsError(f"the Kafka archive {archive} does not hold one {KAFKA_FOLDER}/<version>/libs "
                                  f"folder (found {[str(h) for h in homes]})")
        self.home = homes[0]
        self.version = self.home.name
        if not list(self.libs.glob("kafka-tools-[0-9]*.jar")):
            raise KafkaToolsError(f"the Kafka {self.version} archive {archive} has no kafka-tools jar in its "
                                  "libs (Kafka's reassignment tools come with the 4.x runtimes)")

    @property
    def libs(self) -> Path:
        return self.home / "libs"

    def _jvm_flags(self) -> list[str]:
        flags = [f"-Xmx{TOOL_HEAP_MB}m", "-Djava.awt.headless=true"]
        log4j2 = self.home / "config" / "log4j2.properties"
        log4j = self.home / "config" / "log4j.properties"
        if log4j2.is_file():  # kmf's console config; WARN keeps the tool's own output readable
            flags += [f"-Dlog4j2.configurationFile={log4j2}", "-Dkmf.log.level=WARN"]
        elif log4j.is_file():
            flags.append(f"-Dlog4j.configuration=file:{log4j}")
        return flags

    # --- running a tool ------------------------------------------------------------------------

    def _run(self, what: str, main: str, bootstrap: str, args: Sequence[str],
             client_props: Mapping[str, str], files: Mapping[str, str] = {},
             subcommand: Sequence[str] = ()) -> str:
        """Run `main` [`subcommand`] with `--bootstrap-server bootstrap` and `args` (a tool whose
        options belong to a subcommand, like kafka-cluster's, takes them after it); `files`
        (placeholder -> content) are written to temporary files whose paths replace the
        placeholders in `args`. Returns stdout+stderr; raises KafkaToolsError unless it exits 0
        within the timeout."""
        if not bootstrap or any(ch.isspace() for ch in bootstrap):
            raise ValueError(f"bootstrap servers {bootstrap!r} must be host:port[,host:port...]")
        self.work_dir.mkdir(parents=True, exist_ok=True)
        with tempfile.TemporaryDirectory(prefix=".run-", dir=self.work_dir) as temp:
            paths = {}
            for placeholder, content in files.items():
                paths[placeholder] = str(Path(temp) / f"{placeholder}")
                Path(paths[placeholder]).write_text(content)
            argv = [self.java, *self._jvm_flags(), "-cp", f"{self.libs}/*", main, *subcommand,
                    "--bootstrap-server", bootstrap, *(paths.get(arg, arg) for arg in args)]
            if client_props:
                config = Path(temp) / "client.properties"
                config.write_text(_properties(client_props))
                argv += ["--command-config", str(config)]
            return self._spawn(what, argv)

    def _spawn(self, what: str, argv: list[str]) -> str:
        started = time.monotonic()
        log.debug("%s: %s", what, " ".join(argv))
        try:
            proc = subprocess.Popen(argv, stdin=subprocess.DEVNULL, stdout=subprocess.PIPE,
                                    stderr=subprocess.STDOUT, text=True, errors="replace",
                                    start_new_session=True, cwd=self.work_dir)
        except OSError as exc:
            raise KafkaToolsError(f"{what}: cannot run {argv[0]}: {exc}; {JAVA_MISSING}") from exc
        try:
            output, _ = proc.communicate(timeout=self.timeout_s)
        except subprocess.TimeoutExpired:
            _kill_group(proc)
            output, _ = proc.communicate()
            log.warning("%s: killed after %.1f s", what, time.monotonic() - started)
            raise KafkaToolsError(f"{what} ran over {self.timeout_s:g} s and was killed "
                                  f"(last lines: {_tail(output or '')})") from None
        except BaseException:
            _kill_group(proc)
            proc.wait()
            raise
        elapsed = time.monotonic() - started
        log.info("%s: exit %s in %.1f s", what, proc.returncode, elapsed)
        if proc.returncode != 0:
            raise KafkaToolsError(f"{what} failed (exit {proc.returncode}): {_tail(output)}")
        return output

    # --- the tools -----------------------------------------------------------------------------

    def execute(self, bootstrap: str, moves: Sequence[Move], throttle_bytes_per_s: int | None,
                client_props: Mapping[str, str] = {}, *, additional: bool = False) -> None:
        """Start moving `moves` (`--execute`), throttled between brokers to `throttle_bytes_per_s`
        (at least 1 KB/s; None: no throttle). The throttle stays until a `verify` that finds every
        move complete, or `cancel`, removes it.

        While any reassignment is going in the cluster the tool refuses ("Cannot execute because
        there is an existing partition assignment") unless `additional` (`--additional`): then the
        moves are added to the ongoing ones, and resubmitting ongoing moves changes the throttle."""
        args = ["--reassignment-json-file", "reassignment.json", "--execute"]
        if additional:
            args.append("--additional")
        if throttle_bytes_per_s is not None:
            if throttle_bytes_per_s < 1024:
                raise ValueError(f"throttle {throttle_bytes_per_s} B/s is below Kafka's minimum of 1 KB/s")
            args += ["--throttle", str(int(throttle_bytes_per_s))]
        self._run(f"ReassignPartitionsCommand --execute of {len(moves)} partition(s) on {bootstrap}",
                  REASSIGN_MAIN, bootstrap, args, client_props,
                  {"reassignment.json": _reassignment_json(moves)})

    def verify(self, bootstrap: str, moves: Sequence[Move],
               client_props: Mapping[str, str] = {}) -> dict[tuple[str, int], str]:
        """Each move's state (`--verify`): COMPLETE, IN_PROGRESS, or the tool's line about it (a
        partition with no reassignment going whose replicas differ from the target). When none of
        `moves` is in progress any more, the tool itself removes the throttles: the moved topics'
        throttled-replica lists and the throttle rates of every broker in the cluster, also those
        of brokers the moves do not touch and those somebody else set."""
        output = self._run(f"ReassignPartitionsCommand --verify of {len(moves)} partition(s) on {bootstrap}",
                           REASSIGN_MAIN, bootstrap, ["--reassignment-json-file", "reassignment.json", "--verify"],
                           client_props, {"reassignment.json": _reassignment_json(moves)})
        return parse_verify(output, moves)

    def cancel(self, bootstrap: str, moves: Sequence[Move], client_props: Mapping[str, str] = {}) -> None:
        """Cancel the moves still going (`--cancel`): their partitions keep their old replicas; the
        tool also removes the throttles."""
        self._run(f"ReassignPartitionsCommand --cancel of {len(moves)} partition(s) on {bootstrap}",
                  REASSIGN_MAIN, bootstrap, ["--reassignment-json-file", "reassignment.json", "--cancel"],
                  client_props, {"reassignment.json": _reassignment_json(moves)})

    def run_tool(self, what: str, main: str, bootstrap: str, args: Sequence[str],
                 client_props: Mapping[str, str] = {}) -> str:
        """Another of the archive's tools (e.g. ``kafka.admin.ConfigCommand`` for client quotas,
        which confluent-kafka has no call for): its output, or KafkaToolsError."""
        return self._run(what, main, bootstrap, args, client_props)

    def log_dir_sizes(self, bootstrap: str, brokers: Sequence[int],
                      client_props: Mapping[str, str] = {}) -> dict[tuple[str, int], int]:
        """Each partition's largest replica size in bytes on `brokers` (LogDirsCommand --describe)."""
        if not brokers:
            raise ValueError("log_dir_sizes needs at least one broker")
        output = self._run(f"LogDirsCommand --describe of brokers {list(brokers)} on {bootstrap}",
                           LOG_DIRS_MAIN, bootstrap,
                           ["--describe", "--broker-list", ",".join(str(int(b)) for b in brokers)],
                           client_props)
        return parse_log_dirs(output)

    def finalized_features(self, bootstrap: str, client_props: Mapping[str, str] = {}) -> dict[str, str]:
        """Feature name → finalised level (FeatureCommand describe); metadata.version is one."""
        output = self._run(f"FeatureCommand describe on {bootstrap}", FEATURES_MAIN, bootstrap, ["describe"],
                           client_props)
        found = parse_features(output)
        if "metadata.version" not in found:
            raise KafkaToolsError(f"FeatureCommand describe on {bootstrap} named no metadata.version: {_tail(output)}")
        return found

    def upgrade_release(self, bootstrap: str, release: str, client_props: Mapping[str, str] = {}) -> None:
        """Raise every feature to `release`'s levels ("4.3"; FeatureCommand upgrade --release-version)."""
        if not re.fullmatch(r"\d+\.\d+", release):
            raise ValueError(f"release {release!r} is not MAJOR.MINOR")
        self._run(f"FeatureCommand upgrade --release-version {release} on {bootstrap}", FEATURES_MAIN,
                  bootstrap, ["upgrade", "--release-version", release], client_props)


    def unregister_broker(self, bootstrap: str, node_id: int, client_props: Mapping[str, str] = {}) -> bool:
        """Unregister broker `node_id` from the KRaft cluster (kafka-cluster unregister). True when
        Kafka unregistered it, False when it was not registered (already done); KafkaToolsError
        otherwise."""
        what = f"ClusterTool unregister --id {int(node_id)} on {bootstrap}"
        try:
            self._run(what, CLUSTER_MAIN, bootstrap, ["--id", str(int(node_id))], client_props,
                      subcommand=["unregister"])
        except KafkaToolsError as exc:
            if NOT_REGISTERED.search(str(exc)):
                return False
            raise
        return True


def _kill_group(proc: "subprocess.Popen[str]") -> None:
    try:
        os.killpg(proc.pid, signal.SIGKILL)
    except (ProcessLookupError, PermissionError):
        pass
