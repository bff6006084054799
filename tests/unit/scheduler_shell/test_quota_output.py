"""Kafka's ConfigCommand output for user quotas, as the reconciler reads it, and the numbers it
writes (a byte rate is never rounded)."""
from __future__ import annotations

from scheduler.shell import quotas


def test_describe_lines_become_quotas_per_user_and_other_lines_are_ignored():
    said = ("[2026-12-07 06:10:48,609] WARN something the tool logs\n"
            "Quota configs for user-principal 'alice' are consumer_byte_rate=2097152.0, producer_byte_rate=1048576.0\n"
            "Quota configs for user-principal 'svc.b@x' are request_percentage=50.0\n")
    assert quotas.parse_user_quotas(said) == {
        "alice": {"consumer_byte_rate": 2097152.0, "producer_byte_rate": 1048576.0},
        "svc.b@x": {"request_percentage": 50.0}}
    assert quotas.parse_user_quotas("") == {}


def test_numbers_are_written_whole_or_exact():
    assert quotas._number(1048576.0) == "1048576" and quotas._number(12.5) == "12.5"
