"""Mesos durations in the executor's environment: parsed exactly, or refused with a clear error."""
from __future__ import annotations

import math

import pytest
from hypothesis import given, strategies as st

import executor.main as executor_main
from executor.main import KmfExecutor
from executor.policy import DurationError, parse_duration

pytestmark = pytest.mark.timeout(60)


@pytest.mark.parametrize("raw, seconds", [
    ("5secs", 5.0), ("1.5mins", 90.0), ("250ms", 0.25), ("2hrs", 7200.0), ("1days", 86400.0),
    ("1weeks", 604800.0), ("10us", 1e-5), ("3ns", 3e-9), (" 3secs ", 3.0), ("0secs", 0.0),
])
def test_mesos_durations_are_read_in_seconds(raw, seconds):
    assert math.isclose(parse_duration("X", raw), seconds)


@pytest.mark.parametrize("raw", ["5", "5s", "5 seconds", "secs", "abcsecs", "nansecs", "infmins", "-1secs", "5minutes"])
def test_anything_else_is_refused_naming_variable_and_value(raw):
    with pytest.raises(DurationError) as err:
        parse_duration("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", raw)
    assert f"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD={raw!r}" in str(err.value)


@given(st.floats(min_value=0, max_value=1e9), st.sampled_from(["ns", "us", "ms", "secs", "mins", "hrs", "days", "weeks"]))
def test_every_number_with_a_unit_parses(value, unit):
    assert parse_duration("X", f"{value!r}{unit}") >= 0


@pytest.mark.parametrize("name", ["MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "MESOS_RECOVERY_TIMEOUT"])
def test_the_executor_refuses_a_bad_duration_instead_of_defaulting(name):
    with pytest.raises(DurationError, match=name):
        KmfExecutor({name: "nansecs"})
    with pytest.raises(DurationError, match=name):
        KmfExecutor({name: "5 seconds"})


def test_unset_durations_keep_their_defaults():
    ex = KmfExecutor({"MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD": "", "MESOS_RECOVERY_TIMEOUT": "15mins"})
    assert ex.shutdown_grace_s == 5.0 and ex.recovery_timeout_s == 900.0


def test_main_exits_nonzero_with_the_reason_before_building_a_driver(monkeypatch, capsys):
    monkeypatch.setenv("MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD", "5x")
    built = []
    monkeypatch.setattr(executor_main, "_Driver", lambda *a, **kw: built.append(a))
    assert executor_main.main() != 0
    assert not built
    assert "MESOS_EXECUTOR_SHUTDOWN_GRACE_PERIOD='5x' is not a Mesos duration" in capsys.readouterr().err
