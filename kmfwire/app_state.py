"""The state a stream app is in, as its output says: Kafka Streams' own log lines or kmf's line protocol.

A Kafka Streams app logs every change of its client's state (``KafkaStreams`` at INFO)::

    INFO stream-client [wcj-0] State transition from REBALANCING to RUNNING (org.apache.kafka.streams.KafkaStreams)

A Python app (or any other) tells kmf its state with one line on stdout, the state's name after
``KMF_APP_STATE``, using Kafka Streams' names::

    KMF_APP_STATE REBALANCING     joining its group, or partitions revoked
    KMF_APP_STATE RUNNING         partitions assigned (possibly none), polling
    KMF_APP_STATE ERROR           it cannot go on (kmf restarts it once the stuck limit passes)

`state_line(state)` makes such a line. Pure: nothing here reads files or clocks; the executor
feeds the lines in (see `executor.app_state`).
"""
from __future__ import annotations

import re

# Kafka Streams' KafkaStreams.State names, which the protocol reuses
CREATED, REBALANCING, RUNNING = "CREATED", "REBALANCING", "RUNNING"
PENDING_SHUTDOWN, NOT_RUNNING, PENDING_ERROR, ERROR = "PENDING_SHUTDOWN", "NOT_RUNNING", "PENDING_ERROR", "ERROR"
STATES = (CREATED, REBALANCING, RUNNING, PENDING_SHUTDOWN, NOT_RUNNING, PENDING_ERROR, ERROR)

PROTOCOL_PREFIX = "KMF_APP_STATE"
# the client id of a state told through the protocol (one per process)
PROTOCOL_CLIENT = ""

_STREAMS = re.compile(r"stream-client \[(?P<client>[^\]]*)\] State transition from (?P<old>[A-Z_]+) "
                      r"to (?P<new>[A-Z_]+)")
_PROTOCOL = re.compile(rf"^{PROTOCOL_PREFIX}\s+(?P<new>[A-Z_]+)\s*$")


def state_line(state: str) -> str:
    """The line a Python app prints (on stdout, flushed) when it enters `state` (one of STATES)."""
    if state not in STATES:
        raise ValueError(f"unknown app state {state!r}: one of {', '.join(STATES)}")
    return f"{PROTOCOL_PREFIX} {state}"


def parse_line(line: str) -> tuple[str, str] | None:
    """(client id, new state) that `line` announces, or None for any other line (a state name
    that is not one of STATES is ignored: not a line of the protocol or of KafkaStreams)."""
    if PROTOCOL_PREFIX not in line and "State transition" not in line:
        return None  # nearly every line: no regex for it
    m = _PROTOCOL.match(line.strip())
    client = PROTOCOL_CLIENT
    if m is None:
        m = _STREAMS.search(line)
        if m is None:
            return None
        client = m.group("client")
    new = m.group("new")
    return (client, new) if new in STATES else None
