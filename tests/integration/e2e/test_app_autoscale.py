"""Lag autoscaling and a version roll end to end: the exactly-once word count, autoscaled from 1 to
at most 3 instances on how old its backlog is (target_lag_s: 3 seconds behind per instance), gets a
burst of numbered input; kmf scales it out while the backlog ages and back to 1 after the
cooldown, and every input word is counted exactly once across the scaling steps. Then an
operator's count of 2 (pausing the autoscaler) and a new version (a changed env) rolled over both
instances, the second only once a lag sample taken after the first came back shows the group
settled, and the group never rebalances during the roll. Judged by the master's /master/frameworks
(running instances), Kafka's describe_consumer_groups (members) and the generations its
coordinator recorded, and the output topic read read_committed."""
from __future__ import annotations

import copy
import time

import pytest
import yaml
from confluent_kafka.admin import AdminClient

from tests.helpers.master_views import live_tasks
from tests.helpers.streams_apps import (CountReader, group_generations, produce_lines, start_wordcount_service,
                                        wordcount_app)
from tests.helpers.wait import wait_for

pytestmark = [pytest.mark.timeout(480), pytest.mark.kafka]

GROUP = "wc-auto"
LINES = 60_000  # one numbered word each: the counts must end at exactly 1 per word


def instances(env) -> int:
    return sum(1 for name in live_tasks(env.lm) if name.startswith("wordcount-"))


def members(admin: AdminClient) -> int | None:
    """How many members the group has once it is Stable (None: rebalancing)."""
    d = admin.describe_consumer_groups([GROUP])[GROUP].result(timeout=15)
    return len(d.members) if str(d.state).rsplit(".", 1)[-1] == "STABLE" else None


def decisions(s) -> list[tuple[int, int, int | None]]:
    phase = s.get("/v1/plans/autoscale")["phases"][0]
    return [(int(st["name"].split(" → ")[0]), int(st["name"].split(" → ")[1]), st["lag"]) for st in phase["steps"]]


def test_lag_scales_the_word_count_out_from_one_and_back_and_every_word_is_counted_once(kmf_env):
    started = time.monotonic()
    env = kmf_env(agents=3)
    app = wordcount_app(GROUP, count=1,
                        autoscale={"min": 1, "max": 3, "target_lag_s": 3, "interval_s": 10, "cooldown_s": 15})
    # a sample every 2 s: the backlog lasts only some seconds on a fast machine
    s, boot = start_wordcount_service(env, app, text_partitions=3, policies={"lag_sample_interval_s": 2})
    admin = AdminClient({"bootstrap.servers": boot})
    reader = CountReader(boot, "counts")
    # a first word, so that the group has committed offsets (its lag is known) before the burst
    produce_lines(boot, "text", ["n0"])
    wait_for(lambda: reader.latest().get("n0") == 1, timeout=120, what="the first word counted")
    assert instances(env) == 1 and s.get("/v1/plans/autoscale")["phases"][0]["count"] == 1

    words = [f"n{i}" for i in range(1, LINES + 1)]
    produce_lines(boot, "text", words)
    produced = time.monotonic()
    wait_for(lambda: instances(env) > 1, timeout=90, interval=0.5, what="more than 1 instance at the master")
    out_s = time.monotonic() - produced
    first = decisions(s)[0]
    assert first[0] == 1 and first[1] > 1 and first[2] is not None and first[2] > 0, first
    step = s.get("/v1/plans/autoscale")["phases"][0]["steps"][0]
    assert " s behind (" in step["message"] and "at 3 s per instance" in step["message"], step

    def grown() -> bool:  # Kafka's own view: a stable group of as many members as the master runs, > 1
        m = members(admin)
        return m is not None and m > 1 and m == instances(env)
    wait_for(grown, timeout=120, interval=0.5, what="more than 1 member in the stable group (Kafka's view)")
    peak = instances(env)

    expected = {w: 1 for w in ["n0", *words]}
    reader.wait_for_counts(expected, [], timeout=240)
    counted = time.monotonic()
    # then the backlog is gone: after cooldown_s of it (and as long since the change), back to min
    wait_for(lambda: instances(env) == 1, timeout=120, interval=0.5, what="back to 1 instance at the master")
    in_s = time.monotonic() - counted
    made = decisions(s)
    assert made[0][0] == 1 and made[-1][1] == 1 and max(d[1] for d in made) >= peak, made
    assert all(d[0] == prev[1] for prev, d in zip(made, made[1:])), made  # each change from where the last left it
    wait_for(lambda: members(admin) == 1, timeout=120, interval=1, what="1 member left in the group")

    # an operator's count of 2 pauses the autoscaler (it would keep 1: nothing is behind)
    code, doc = s.request("POST", "/v1/scale", {"kind": "app", "name": "wordcount", "count": 2})
    assert code == 200, doc
    wait_for(lambda: members(admin) == 2 and instances(env) == 2, timeout=120, interval=1,
             what="2 members for the operator's count")
    assert s.get("/v1/plans/autoscale")["phases"][0]["manual"] is True

    # a new version rolls over both instances; the second waits for a lag sample taken after the
    # first is back, showing the group settled, and static membership keeps the group's generation
    pods = ("wordcount-0", "wordcount-1")
    old = {p: s.pod(p)["task_id"] for p in pods}
    generations = group_generations(boot, GROUP)
    new = copy.deepcopy(s.config)
    new["apps"][0]["env"] = {"APP_VERSION": "2"}
    code, doc = s.request("PUT", "/v1/config", yaml.safe_dump(new))
    assert code == 200, doc
    said: set[str] = set()

    def rolled() -> bool:
        for ph in s.get("/v1/plans/update")["phases"]:
            said.update(st["message"] for st in ph["steps"])
        now = {p: s.pod(p) for p in pods}
        return all(now[p]["task_id"] != old[p] and now[p].get("ready") for p in pods)
    roll_started = time.monotonic()
    wait_for(rolled, timeout=180, interval=0.3, what="both instances rolled to the new version")
    roll_s = time.monotonic() - roll_started
    assert any("a sample of consumer group wc-auto taken after every instance is ready" in m for m in said), said
    assert instances(env) == 2 and decisions(s) == made  # the pause and the decisions kept through the update
    wait_for(lambda: members(admin) == 2, timeout=120, interval=1, what="2 members after the roll")
    after = group_generations(boot, GROUP)
    assert set(after[len(generations) - 1:]) == {generations[-1]}, ("a rebalance during the roll", generations, after)

    # exactly once across both steps: every word's only update is 1 (an aborted batch is never read)
    reader.latest()
    twice = {w: h for w, h in reader.history.items() if h != [1]}
    assert not twice, f"words counted more than once: {dict(list(twice.items())[:5])}"
    assert set(reader.history) == set(expected)
    reader.close()
    print(f"autoscale e2e: scaled out {out_s:.1f} s after the burst (to {peak} members in Kafka's view), "
          f"all {LINES + 1} words counted {counted - produced:.1f} s after it, back to 1 {in_s:.1f} s after that; "
          f"decisions {made}; the roll of 2 instances took {roll_s:.1f} s; "
          f"{time.monotonic() - started:.0f} s in all")
