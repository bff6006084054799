"""Users' client quotas through Kafka's own ConfigCommand (``kafka-configs.sh``).

confluent-kafka 2.16 has no describe/alter client quotas call, so kmf runs the tool from the
Kafka archive it serves (scheduler/shell/kafka_tools.py), as for partition moves. The tool's
describe output, one line per user with quotas (Kafka 3.x and 4.x):
``Quota configs for user-principal 'alice' are consumer_byte_rate=2048.0, producer_byte_rate=1024.0``
"""
from __future__ import annotations

import re
from typing import Mapping, Sequence

from scheduler.shell.kafka_tools import KafkaTools

CONFIG_MAIN = "kafka.admin.ConfigCommand"
_LINE = re.compile(r"^Quota configs for user-principal '(?P<user>[^']*)' are (?P<values>.*)$")


def parse_user_quotas(output: str) -> dict[str, dict[str, float]]:
    """user → quota key → value, from ConfigCommand's describe output."""
    out: dict[str, dict[str, float]] = {}
    for line in output.splitlines():
        m = _LINE.match(line.strip())
        if not m:
            continue
        values: dict[str, float] = {}
        for item in m["values"].split(","):
            key, sep, value = item.strip().partition("=")
            if sep:
                try:
                    values[key] = float(value)
                except ValueError:
                    continue
        if values:
            out[m["user"]] = values
    return out


def _number(value: float) -> str:
    # 1048576.0 as "1048576": byte rates are whole numbers, and %g would round them
    return str(int(value)) if float(value).is_integer() else repr(float(value))


def describe_user_quotas(tools: KafkaTools, bootstrap: str) -> dict[str, dict[str, float]]:
    output = tools.run_tool(f"ConfigCommand --describe of user quotas on {bootstrap}", CONFIG_MAIN, bootstrap,
                            ["--describe", "--entity-type", "users"])
    return parse_user_quotas(output)


def alter_user_quotas(tools: KafkaTools, bootstrap: str, user: str, to_set: Mapping[str, float],
                      to_delete: Sequence[str]) -> None:
    args = ["--alter", "--entity-type", "users", "--entity-name", user]
    if to_set:
        args += ["--add-config", ",".join(f"{k}={_number(v)}" for k, v in sorted(to_set.items()))]
    if to_delete:
        args += ["--delete-config", ",".join(sorted(to_delete))]
    tools.run_tool(f"ConfigCommand --alter of user {user}'s quotas on {bootstrap}", CONFIG_MAIN, bootstrap, args)
