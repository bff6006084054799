"""Rules for what a stream app brings along: its artifacts (`uris`), its static membership
(`session_timeout_s`), its stuck limit (`stuck_limit_s`), its state volume (`state_volume_mb`) and its autoscaling
(`autoscale`). Pure: (path, app) → [(path, message)]."""
from __future__ import annotations

import re

from config.models import (
    SESSION_TIMEOUT_MAX_S, SESSION_TIMEOUT_MIN_S, STUCK_LIMIT_MAX_S, STUCK_LIMIT_MIN_S, AppSpec, AutoscaleSpec,
)

# the autoscaler's interval and cooldown: at least one lag sample apart (the leader samples every
# ~10 s), at most a day
AUTOSCALE_MIN_S = 10.0
AUTOSCALE_MAX_S = 86400.0
# a time lag is read off the lag samples' line, to about a sample's spacing: below a second it is noise
TARGET_LAG_MIN_S = 1.0

# what the Mesos fetcher can get: these schemes, or an absolute path on the agent
URI_SCHEMES = ("http", "https", "ftp", "ftps", "hdfs", "s3", "s3a", "s3n", "file")
_SCHEME = re.compile(r"^([a-zA-Z][a-zA-Z0-9+.-]*)://")
# archives the fetcher unpacks; anything else is put in the sandbox as it is
ARCHIVES = (".tar", ".tar.gz", ".tgz", ".tar.bz2", ".tbz2", ".tar.xz", ".txz", ".zip")

Issue = tuple[str, str]

# what kmf writes into a Kafka Streams app's properties file, and where an operator changes it
KMF_PROPERTIES = {
    "bootstrap.servers": "the brokers' current addresses",
    "application.id": "<service>-<app>; the app's group",
    "state.dir": "the sandbox's streams-state, the state volume with state_volume_mb",
    "group.instance.id": "static membership, <service>-<app>-<i>",
    "client.id": "the pod's name",
    "session.timeout.ms": "set it with session_timeout_s",
}


def _uri(path: str, value: str) -> list[Issue]:
    if not value or any(ch.isspace() for ch in value):
        return [(f"{path}.value", f"{value!r} must be a URI without spaces")]
    match = _SCHEME.match(value)
    if match is None:
        if not value.startswith("/"):
            return [(f"{path}.value", f"{value!r} must be an absolute path on the agents or a URI "
                                      f"with one of the schemes {', '.join(URI_SCHEMES)}")]
    elif match.group(1).lower() not in URI_SCHEMES:
        return [(f"{path}.value", f"scheme {match.group(1)!r} is not one the Mesos fetcher knows "
                                  f"({', '.join(URI_SCHEMES)})")]
    rest = value[match.end():] if match else value
    if "/" not in rest.split("?", 1)[0].rstrip("/") and match is not None:
        return [(f"{path}.value", f"{value!r} names no file (host only)")]
    if value.split("?", 1)[0].endswith("/"):
        return [(f"{path}.value", f"{value!r} names a directory, not a file")]
    return []


def app_issues(path: str, app: AppSpec) -> list[Issue]:
    """The problems of an app's `uris`, `session_timeout_s`, `stuck_limit_s` and `state_volume_mb`, each
    naming its path."""
    out: list[Issue] = []
    seen: dict[str, int] = {}
    for j, u in enumerate(app.uris):
        where = f"{path}.uris[{j}]"
        problems = _uri(where, u.value)
        out += problems
        if problems:
            continue
        if u.executable and u.extract and u.basename.endswith(ARCHIVES):
            out.append((f"{where}.executable", "an archive is extracted, not made executable: "
                                               "set extract: false or executable: false"))
        if u.basename in seen:
            # the fetcher names each file after the URI's last segment: the second would overwrite
            out.append((f"{where}.value", f"{u.basename!r} is also the file name of uris[{seen[u.basename]}]"))
        seen.setdefault(u.basename, j)
    t = app.session_timeout_s
    if t is not None and not SESSION_TIMEOUT_MIN_S <= t <= SESSION_TIMEOUT_MAX_S:
        out.append((f"{path}.session_timeout_s", f"must be from {SESSION_TIMEOUT_MIN_S:g} to "
                                                 f"{SESSION_TIMEOUT_MAX_S:g} (what Kafka brokers accept), got {t:g}"))
    stuck = app.stuck_limit_s
    if not STUCK_LIMIT_MIN_S <= stuck <= STUCK_LIMIT_MAX_S:  # NaN too
        out.append((f"{path}.stuck_limit_s", f"must be from {STUCK_LIMIT_MIN_S:g} to {STUCK_LIMIT_MAX_S:g} "
                                             f"seconds (how long an instance may stay out of RUNNING before it "
                                             f"is restarted), got {stuck:g}"))
    if app.properties and not (app.runtime == "java" and "{properties}" in app.command):
        out.append((f"{path}.properties", "only a java app given \"{properties}\" in its command reads them "
                                          "(others take settings through env)"))
    for key in sorted(set(app.properties) & set(KMF_PROPERTIES)):
        out.append((f"{path}.properties.{key}", f"kmf sets {key} itself ({KMF_PROPERTIES[key]})"))
    if app.state_volume_mb < 0:
        out.append((f"{path}.state_volume_mb", f"must be 0 (no volume) or more, got {app.state_volume_mb}"))
    return out


def volume_changes(old: tuple[AppSpec, ...], new: tuple[AppSpec, ...]) -> list[str]:
    """Why an update cannot change an app's `state_volume_mb`: an instance's volume is fixed when
    its resources are reserved (a change would apply to some instances and not others)."""
    before = {a.name: a.state_volume_mb for a in old}
    out = []
    for i, app in enumerate(new):
        was = before.get(app.name)
        if was is not None and was != app.state_volume_mb:
            out.append(f"apps[{i}].state_volume_mb: {app.name}'s instances reserved their volumes at {was} MB "
                       f"({was} → {app.state_volume_mb}); keep {was}, or remove the app in one update and add it "
                       "back in the next (its state is restored from the changelog)")
    return out


def autoscale_issues(path: str, auto: AutoscaleSpec, count: int, max_instances: int) -> list[Issue]:
    """The problems of an app's `autoscale` (`count`: the app's), each naming its field."""
    out: list[Issue] = []
    if not 1 <= auto.min <= max_instances:
        out.append((f"{path}.min", f"must be from 1 to {max_instances} (scale to 0 with kmf scale app), got {auto.min}"))
    if not auto.min <= auto.max <= max_instances:
        out.append((f"{path}.max", f"must be from min ({auto.min}) to {max_instances}, got {auto.max}"))
    if (auto.target_lag is None) == (auto.target_lag_s is None):
        out.append((f"{path}.target_lag", "set exactly one of target_lag (records behind per instance) and "
                                          "target_lag_s (seconds behind per instance)"))
    if auto.target_lag is not None and auto.target_lag < 1:
        out.append((f"{path}.target_lag", f"must be at least 1 record behind per instance, got {auto.target_lag}"))
    if auto.target_lag_s is not None and not TARGET_LAG_MIN_S <= auto.target_lag_s <= AUTOSCALE_MAX_S:  # NaN too
        out.append((f"{path}.target_lag_s", f"must be from {TARGET_LAG_MIN_S:g} to {AUTOSCALE_MAX_S:g} seconds "
                                            f"behind per instance, got {auto.target_lag_s:g}"))
    for name in ("interval_s", "cooldown_s"):
        value = getattr(auto, name)
        if not AUTOSCALE_MIN_S <= value <= AUTOSCALE_MAX_S:  # NaN too
            out.append((f"{path}.{name}", f"must be from {AUTOSCALE_MIN_S:g} to {AUTOSCALE_MAX_S:g} seconds, got {value:g}"))
    if count == 0:
        out.append((path.rsplit(".", 1)[0] + ".count", "an autoscaled app starts with at least 1 instance (its lag "
                                                       "is read from its group's commits), got 0"))
    return out
