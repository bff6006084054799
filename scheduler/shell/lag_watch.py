"""Consumer-group lag: committed offsets (AdminClient) against the partitions' high watermarks.

Only the leader samples (started next to the KafkaWatcher), every policies.lag_sample_interval_s, on its own
thread, through a probe child process (lag_probe says why it is not done in here); the latest sample is kept here (not in the core State) and read by
/metrics and GET /v1/lag, and each sample is handed to `on_sample` (the scheduler makes it the
core's `LagSampled` event, which autoscaled apps are scaled by).

A partition the group has no committed offset for (Kafka answers OFFSET_INVALID) is *unknown*,
not counted from the earliest offset: where the group would start depends on its
auto.offset.reset, which the scheduler does not know. Unknown partitions are listed in the sample
and left out of the sums. Bounded work: at most MAX_GROUPS groups (by name) and MAX_PARTITIONS
committed partitions per round; what is left out is counted in `skipped_groups` /
`skipped_partitions`. Groups with no committed offset at all are reported with no topic.
"""
from __future__ import annotations

import json
import logging
import os
import select
import subprocess
import sys
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping

from scheduler.core.pods import desired_pods
from scheduler.core.state import State
from scheduler.core.taskinfo import bootstrap_servers

log = logging.getLogger(__name__)

MAX_GROUPS = 200
MAX_PARTITIONS = 5000
TP = tuple[str, int]


def compute_lag(committed: Mapping[str, Mapping[TP, int | None]], ends: Mapping[TP, int],
                sampled_at: float, round_s: float = 0.0, skipped_groups: int = 0,
                skipped_partitions: int = 0, states: Mapping[str, str | None] | None = None,
                owners: Mapping[str, Mapping[TP, str]] | None = None) -> dict[str, Any]:
    """Pure: per group, per topic, lag = high watermark - committed offset (never below 0), summed
    over the partitions with both known; partitions with no committed offset or no known high
    watermark are `unknown` and not summed. `states`: each group's state as Kafka listed it;
    `owners`: the client id holding each partition, for the groups described."""
    groups: dict[str, Any] = {}
    states = states or {}
    owners = owners or {}
    for group in sorted(committed):
        topics: dict[str, Any] = {}
        total = 0
        for (topic, part), off in sorted(committed[group].items()):
            t = topics.setdefault(topic, {"lag": 0, "partitions": {}, "unknown": []})
            end = ends.get((topic, part))
            if off is None or off < 0 or end is None or end < 0:
                t["unknown"].append(part)
                continue
            lag = max(0, end - off)
            t["partitions"][part] = {"committed": off, "end": end, "lag": lag}
            owner = owners.get(group, {}).get((topic, part))
            if owner is not None:
                t["partitions"][part]["owner"] = owner
            t["lag"] += lag
            total += lag
        groups[group] = {"lag": total, "topics": topics, "state": states.get(group)}
    return {"sampled_at": sampled_at, "round_s": round_s, "groups": groups,
            "skipped_groups": skipped_groups, "skipped_partitions": skipped_partitions}


class LagWatcher:
    """Samples through a probe process (scheduler.shell.lag_probe), started for the current
    bootstrap servers and replaced when they change; a probe that dies (librdkafka can crash
    there) or does not answer in time is replaced at the next round, and the scheduler lives on."""

    def __init__(self, state: Callable[[], State], timeout: float = 5.0,
                 max_groups: int = MAX_GROUPS, max_partitions: int = MAX_PARTITIONS,
                 probe_cmd: Callable[[str], list[str]] | None = None,
                 on_sample: Callable[[dict[str, Any]], None] | None = None) -> None:
        self.state = state
        self.on_sample = on_sample
        self.timeout = timeout
        self.max_groups, self.max_partitions = max_groups, max_partitions
        self.probe_cmd = probe_cmd or self._default_probe_cmd
        self.latest: dict[str, Any] | None = None  # replaced whole: readers need no lock
        self.probe_deaths = 0  # probes that died or hung (for the log and tests)
        self.stopped = threading.Event()
        self._probe: tuple[str, subprocess.Popen] | None = None
        self.thread = threading.Thread(target=self._run, name="kmf-lag-watch", daemon=True)

    def _default_probe_cmd(self, boot: str) -> list[str]:
        return [sys.executable, "-m", "scheduler.shell.lag_probe", "--bootstrap", boot,
                "--timeout", str(self.timeout), "--max-groups", str(self.max_groups),
                "--max-partitions", str(self.max_partitions)]

    def start(self) -> "LagWatcher":
        self.thread.start()
        return self

    def stop(self) -> None:
        self.stopped.set()
        self._end_probe()

    def _interval(self) -> float:
        """policies.lag_sample_interval_s of the current target (a config update changes it)."""
        return float(self.state().spec.policies.lag_sample_interval_s)

    def _run(self) -> None:
        while not self.stopped.wait(self._interval()):
            try:
                self.poll()
            except Exception as exc:  # noqa: BLE001 - brokers down: try again next time
                log.debug("consumer-group lag: %s", exc)
        self._end_probe()

    def poll(self) -> dict[str, Any] | None:
        s = self.state()
        boot = bootstrap_servers(s.tasks, desired_pods(s.spec))
        if not boot or not any(r.serving for r in s.tasks.values() if r.kind == "broker"):
            return None
        started = time.time()
        answer = self._ask(boot, sorted({a.consumer_group(s.spec.name) for a in s.spec.apps}))
        if answer is None or "error" in answer:
            if answer is not None:
                log.debug("consumer-group lag: %s", answer["error"])
            return None
        committed = {g: {(t, p): off for t, p, off in parts} for g, parts in answer["committed"].items()}
        ends = {(t, p): end for t, p, end in answer["ends"]}
        owners = {g: {(t, p): client for t, p, client in parts} for g, parts in (answer.get("owners") or {}).items()}
        sample = compute_lag(committed, ends, answer["sampled_at"], round(time.time() - started, 3),
                             answer["skipped_groups"], answer["skipped_partitions"], answer.get("states"), owners)
        self.latest = sample
        if self.on_sample is not None:
            self.on_sample(sample)
        return sample

    def _ask(self, boot: str, describe: list[str] | None = None) -> dict[str, Any] | None:
        """One sample from the probe for `boot` (started or replaced as needed), with the partition
        owners of the `describe` groups; None when the probe died or did not answer in time (it is
        then ended, and a new one starts next round)."""
        if self._probe is not None and (self._probe[0] != boot or self._probe[1].poll() is not None):
            self._end_probe()
        if self._probe is None:
            # the probe imports kmf's own modules: from wherever this scheduler's package is
            root = str(Path(__file__).resolve().parents[2])
            env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [root, os.environ.get("PYTHONPATH")]))}
            proc = subprocess.Popen(self.probe_cmd(boot), stdin=subprocess.PIPE, stdout=subprocess.PIPE,
                                    stderr=subprocess.DEVNULL, text=True, env=env)
            self._probe = (boot, proc)
        proc = self._probe[1]
        try:
            assert proc.stdin is not None and proc.stdout is not None
            proc.stdin.write(json.dumps({"describe": describe or []}) + "\n")
            proc.stdin.flush()
            ready, _, _ = select.select([proc.stdout], [], [], self._answer_timeout())
            line = proc.stdout.readline() if ready else ""
        except (BrokenPipeError, OSError, ValueError):
            line = ""
        if not line:
            if self.stopped.is_set():
                return None
            code = proc.poll()
            self.probe_deaths += 1
            log.warning("consumer-group lag probe %s; a new one starts in %.0f s",
                        f"died (exit {code})" if code is not None else "did not answer in time",
                        self._interval())
            self._end_probe()
            return None
        return json.loads(line)

    def _answer_timeout(self) -> float:
        # a round asks the group list, each group's offsets and the end offsets, each bounded by
        # `timeout`; a slow answer only delays the next sample, a hung probe is replaced
        return max(60.0, 6 * (self.timeout + 1))

    def _end_probe(self) -> None:
        probe, self._probe = self._probe, None
        if probe is None:
            return
        proc = probe[1]
        try:
            if proc.stdin is not None:
                proc.stdin.close()  # the probe exits when its stdin closes
            proc.wait(timeout=2)
        except (OSError, subprocess.TimeoutExpired):
            proc.kill()
            proc.wait(timeout=5)
