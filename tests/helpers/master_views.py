"""What the Mesos master (localmesos) and the agents' processes show of a kmf service, for e2e
checks: live tasks, reservations by kmf.reservation label, a broker JVM's heap."""
from __future__ import annotations


def live_tasks(lm) -> list[str]:
    names = []
    for fw in lm.get("/master/frameworks")["frameworks"]:
        names += [t["name"] for t in fw.get("tasks", []) if t["state"] in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING")]
    return names


def reservation_ids(lm) -> set[str]:
    ids = set()
    for slave in lm.get("/master/slaves")["slaves"]:
        for res in slave.get("reserved_resources_full", {}).get("kafka-role", []):
            for label in (res.get("reservation") or {}).get("labels", {}).get("labels", []):
                if label["key"] == "kmf.reservation":
                    ids.add(label["value"])
    return ids


def volumes_in_use(lm) -> dict[str, str]:
    """Persistence id → agent id of every persistent volume a task or executor uses, as the
    master's /master/slaves shows them (used_resources_full)."""
    out = {}
    for slave in lm.get("/master/slaves")["slaves"]:
        for res in slave.get("used_resources_full", []):
            pid = ((res.get("disk") or {}).get("persistence") or {}).get("id")
            if pid:
                out[pid] = slave["id"]
    return out


def master_tasks(lm) -> dict[str, str]:
    """Task name → task id of every running task, as the master sees them."""
    out = {}
    for fw in lm.get("/master/frameworks")["frameworks"]:
        for t in fw.get("tasks", []):
            if t["state"] in ("TASK_STAGING", "TASK_STARTING", "TASK_RUNNING"):
                out[t["name"]] = t["id"]
    return out


def broker_heap(task_id: str) -> str | None:
    """-Xmx of the broker JVM that runs `task_id` (its own command line)."""
    from tests.helpers.fixtures_scheduler import java_pid_of
    pid = java_pid_of(task_id)
    if pid is None:
        return None
    argv = open(f"/proc/{pid}/cmdline", "rb").read().split(b"\0")
    return next((a.decode()[4:] for a in argv if a.startswith(b"-Xmx")), None)
