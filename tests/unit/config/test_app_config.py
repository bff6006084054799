"""An app's `uris`, `avoid_brokers` and `session_timeout_s`: loading (the short form too), the
errors naming the path, the session timeout derived from the recovery policy, and the stored form
round-tripping."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from config import AppUri, ConfigError, Policies, load_text, spec_from_json, spec_to_json
from config.models import RELAUNCH_MARGIN_S, SESSION_TIMEOUT_MAX_S, SESSION_TIMEOUT_MIN_S, AppSpec

BASE = """\
name: kafka
mesos: {master: 'zk://127.0.0.1:2181/mesos'}
zookeeper: {connect: '127.0.0.1:2181'}
apps:
  - name: enricher
    command: [-m, enricher]
%s
"""


def load(extra: str):
    return load_text(BASE % extra, "svc.yaml", env={})


def problems(extra: str) -> list[str]:
    with pytest.raises(ConfigError) as info:
        load(extra)
    return [str(p) for p in info.value.problems]


def test_uris_in_the_short_and_the_long_form():
    spec = load("    uris: ['http://repo/e.whl', {value: 'http://repo/lib.tar.gz', cache: true}]\n"
                "    avoid_brokers: true")
    app = spec.apps[0]
    assert app.uris == (AppUri("http://repo/e.whl"), AppUri("http://repo/lib.tar.gz", cache=True))
    assert app.avoid_brokers and app.uris[1].basename == "lib.tar.gz"
    assert spec_from_json(spec_to_json(spec)) == spec  # the stored target reads back


@pytest.mark.parametrize("uris, path, words", [
    ("['http://repo/a.jar', 'ftp x']", "apps[0].uris[1].value", "without spaces"),
    ("['relative/a.jar']", "apps[0].uris[0].value", "absolute path"),
    ("['gopher://h/a.jar']", "apps[0].uris[0].value", "scheme 'gopher'"),
    ("['http://repo/dir/']", "apps[0].uris[0].value", "names a directory"),
    ("['http://repo']", "apps[0].uris[0].value", "names no file"),
    ("['http://a/x.jar', 'https://b/x.jar']", "apps[0].uris[1].value", "also the file name of uris[0]"),
    ("[{value: 'http://a/x.tgz', executable: true}]", "apps[0].uris[0].executable", "extract: false"),
    ("[{value: 'http://a/x.jar', mode: 1}]", "apps[0].uris[0].mode", "unknown key"),
    ("[{extract: true}]", "apps[0].uris[0].value", "is required"),
])
def test_bad_uris_are_named_by_their_path(uris, path, words):
    found = problems(f"    uris: {uris}")
    assert any(f": {path}: " in p and words in p for p in found), found


def test_a_session_timeout_kafka_refuses_is_named():
    found = problems("    session_timeout_s: 2")
    assert any("apps[0].session_timeout_s: must be from 6 to 1800" in p for p in found), found


@pytest.mark.parametrize("value", ["2", "0", "-5", "100000"])
def test_a_stuck_limit_out_of_bounds_is_named(value):
    found = problems(f"    stuck_limit_s: {value}")
    assert any("apps[0].stuck_limit_s: must be from 5 to 86400 seconds" in p for p in found), found


def test_the_stuck_limit_defaults_to_five_minutes_and_round_trips():
    assert load("").apps[0].stuck_limit_s == 300
    spec = load("    stuck_limit_s: 45")
    assert spec.apps[0].stuck_limit_s == 45 and spec_from_json(spec_to_json(spec)) == spec


def test_plain_files_and_paths_are_fine():
    app = load("    uris: ['/opt/apps/e.whl', 'file:///srv/e.zip', {value: 'http://h/run.sh', extract: false, "
               "executable: true}]").apps[0]
    assert [u.basename for u in app.uris] == ["e.whl", "e.zip", "run.sh"]


@settings(max_examples=50)
@given(backoff=st.floats(0, 10_000, allow_nan=False), given_s=st.none() | st.floats(6, 1800))
def test_the_session_timeout_covers_a_first_relaunch_within_kafkas_bounds(backoff, given_s):
    app = AppSpec(name="a", command=("x",), session_timeout_s=given_s)
    ms = app.session_timeout_ms(Policies(backoff_initial_s=backoff))
    if given_s is not None:
        assert ms == int(given_s * 1000)
    else:
        assert SESSION_TIMEOUT_MIN_S * 1000 <= ms <= SESSION_TIMEOUT_MAX_S * 1000
        assert ms >= min(SESSION_TIMEOUT_MAX_S, backoff + RELAUNCH_MARGIN_S) * 1000 - 1


def test_autoscale_loads_with_its_defaults_and_round_trips():
    spec = load("    autoscale: {max: 6, target_lag: 5000}")
    a = spec.apps[0].autoscale
    assert (a.min, a.max, a.target_lag, a.interval_s, a.cooldown_s) == (1, 6, 5000, 30.0, 300.0)
    assert spec_from_json(spec_to_json(spec)) == spec
    assert load("").apps[0].autoscale is None
    timed = load("    autoscale: {max: 6, target_lag_s: 30}")
    assert (timed.apps[0].autoscale.target_lag, timed.apps[0].autoscale.target_lag_s) == (None, 30.0)
    assert spec_from_json(spec_to_json(timed)) == timed


@pytest.mark.parametrize("extra, expected", [
    ("    autoscale: {target_lag: 10}", "apps[0].autoscale.max: is required"),
    ("    autoscale: {max: 3}", "apps[0].autoscale.target_lag: set exactly one of target_lag"),
    ("    autoscale: {max: 3, target_lag: 9, target_lag_s: 5}", "apps[0].autoscale.target_lag: set exactly one"),
    ("    autoscale: {max: 3, target_lag_s: 0.2}", "apps[0].autoscale.target_lag_s: must be from 1 to 86400"),
    ("    autoscale: {max: 3, target_lag_s: .nan}", "apps[0].autoscale.target_lag_s: expected a number"),
    ("    autoscale: {min: 4, max: 3, target_lag: 10}", "apps[0].autoscale.max: must be from min (4)"),
    ("    autoscale: {min: 0, max: 3, target_lag: 10}", "apps[0].autoscale.min: must be from 1"),
    ("    autoscale: {max: 3, target_lag: 0}", "apps[0].autoscale.target_lag: must be at least 1"),
    ("    autoscale: {max: 3, target_lag: 9, cooldown_s: 2}", "apps[0].autoscale.cooldown_s: must be from 10"),
    ("    autoscale: {max: 3, target_lag: 9, interval_s: .nan}", "apps[0].autoscale.interval_s"),
    ("    count: 0\n    autoscale: {max: 3, target_lag: 9}", "apps[0].count: an autoscaled app starts with at least 1"),
    ("    autoscale: {max: 3, target_lag: 9, lag: 4}", "apps[0].autoscale.lag: unknown key"),
])
def test_bad_autoscale_settings_are_named(extra, expected):
    found = problems(extra)
    assert any(expected in p for p in found), found
