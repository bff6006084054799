"""`python -m benchmarks` (`make bench`): run every benchmark, print the figures, write
docs/benchmarks.md. Figures are measurements of this machine, never pass/fail.

`--only WORD` (repeatable) runs the benchmarks whose title holds one of the words (e.g. `--only
"offer round" --only restart`) and only prints: the document keeps the figures of a whole run."""
from __future__ import annotations

import json
import os
import platform
import sys
import time
from pathlib import Path

from benchmarks import app_state_restart, decisions, deploy_datapath, rebalance_plan, recovery

DOC = Path(__file__).resolve().parent.parent / "docs" / "benchmarks.md"


def machine() -> str:
    try:
        model = next(l.split(":", 1)[1].strip() for l in open("/proc/cpuinfo") if l.startswith("model name"))
    except (OSError, StopIteration):
        model = platform.processor()
    mem = os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_PHYS_PAGES") / 2**30
    return f"{os.cpu_count()} × {model}, {mem:.0f} GiB, Python {platform.python_version()}"


def kept_sections() -> str:
    """The document's own sections (from its first `## ` heading on, e.g. before/after figures of
    a change): a new run rewrites the table above them and keeps them."""
    try:
        text = DOC.read_text()
    except OSError:
        return ""
    at = text.find("\n## ")
    return "" if at < 0 else text[at:].rstrip("\n") + "\n"


def main() -> int:
    quick = "--quick" in sys.argv
    only = [sys.argv[i + 1] for i, arg in enumerate(sys.argv[:-1]) if arg == "--only"]
    results = {}
    steps = [
        ("offer round: 1,000 agents × 1,000 pending tasks", lambda: decisions.offer_round(runs=2 if quick else 5)),
        ("single offer with 1,000 pending", lambda: decisions.single_offers(samples=100 if quick else 300)),
        ("status update in → relaunch decided", decisions.relaunch_overhead),
        ("memory: 10,000 task records", decisions.memory),
        ("scheduler restart: 10,000 records in ZooKeeper", recovery.restart),
        ("rebalance plan: 30,000 partitions (RF 3), 100 brokers + 10 new, 3 racks", rebalance_plan.plan_speed),
        ("deploy (config/local.yaml) and data path (Producer/ConsumerPerformance, acks=all, 1 partition): kmf vs by hand",
         lambda: deploy_datapath.run(runs=2 if quick else 3)),
        (f"Kafka Streams restart with {app_state_restart.STATE_MB} MB of state: state volume vs none",
         app_state_restart.run),
    ]
    if only:
        steps = [(title, run) for title, run in steps if any(word in title for word in only)]
        if not steps:
            print(f"no benchmark title holds {only}", file=sys.stderr)
            return 2
    for title, run in steps:
        t0 = time.perf_counter()
        results[title] = run()
        print(f"{title}: {json.dumps(results[title])}  ({time.perf_counter() - t0:.1f}s)", flush=True)
    if only:
        return 0
    lines = ["# Benchmarks", "", f"Machine: {machine()}. Run: `make bench` ({time.strftime('%Y-%m-%d')}).",
             "Figures are measurements, not assertions; targets: an offer round of 1,000 agents × 1,000 pending "
             "tasks under 100 ms median, a restart with 10,000 task records deciding again within 2 s.", "", "| benchmark | figures |",
             "| --- | --- |"]
    for title, figs in results.items():
        text = ", ".join(f"{k} {v:.3g}" if isinstance(v, float) else f"{k} {v}" for k, v in figs.items())
        lines.append(f"| {title} | {text} |")
    DOC.write_text("\n".join(lines) + "\n" + kept_sections())
    print(f"written to {DOC}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
