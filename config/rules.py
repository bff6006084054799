"""Semantic rules of a service spec, and what an update may change.

Each rule returns ``(dotted path, message)`` pairs; `config.load_text` turns them into problems
with line numbers. Pure functions only (files are checked only when asked).
"""
from __future__ import annotations

import os
import re
from typing import Iterable

import attrs

from config.declared import removed, replication_changes, validate_declared
from config.app_rules import app_issues, autoscale_issues, volume_changes
from config.models import AppSpec, Constraint, ServiceSpec, quorum_size
from kmfwire import artifacts

NAME = re.compile(r"^[a-z][a-z0-9-]{0,38}[a-z0-9]$|^[a-z]$")
HOST_PORT = re.compile(r"^[A-Za-z0-9_.\-]+:\d{1,5}$")
RESERVED_POD_NAMES = ("broker", "controller")
# kmf writes these itself (identity, addresses, storage, quorum); an override would break it.
MANAGED_PROPERTIES = frozenset({
    "node.id", "broker.id", "process.roles", "listeners", "advertised.listeners",
    "listener.security.protocol.map", "controller.listener.names", "inter.broker.listener.name",
    "log.dirs", "log.dir", "metadata.log.dir", "controller.quorum.voters",
    "controller.quorum.bootstrap.servers", "zookeeper.connect", "broker.rack",
})
# Broker settings kmf applies live (incremental alter configs on every broker id, then read back):
# each is dynamic at cluster-wide scope in Kafka 4.x (KRaft) and 3.9 (ZooKeeper mode), i.e.
# describe_configs on a BROKER resource reports it not read-only there
# (tests/integration/test_live_broker_settings.py checks this on real brokers of both runtimes).
# Not log.retention.hours or .minutes: Kafka has only log.retention.ms dynamically.
LIVE_BROKER_SETTINGS = frozenset({
    "log.retention.ms", "log.retention.bytes", "log.segment.bytes",
    "log.cleaner.threads", "num.io.threads", "num.network.threads", "num.replica.fetchers",
    "message.max.bytes", "compression.type", "unclean.leader.election.enable",
    "min.insync.replicas", "log.cleanup.policy", "background.threads",
})
# A live key's value in `restart_overrides`: what a broker restart depends on is only whether the
# key is in its server.properties, not its value (the value is set live).
LIVE_VALUE = "<set live>"

Issue = tuple[str, str]


# brokers or instances of one app: a spec beyond this is a typo, and would stall the decision loop
MAX_INSTANCES = 10_000

def _constraints(path: str, constraints: Iterable[Constraint]) -> list[Issue]:
    out: list[Issue] = []
    for i, c in enumerate(constraints):
        where = f"{path}[{i}]"
        if c.operator in ("UNIQUE",) and c.value is not None:
            out.append((where, f"{c.operator} takes no value, got {c.value!r}"))
        if c.operator in ("CLUSTER", "LIKE", "UNLIKE", "IS", "MAX_PER") and not c.value:
            out.append((where, f"{c.operator} needs a value"))
        if c.operator in ("MAX_PER", "GROUP_BY") and c.value is not None:
            if not c.value.isdigit() or int(c.value) < 1:
                out.append((where, f"{c.operator} needs a positive whole number, got {c.value!r}"))
        if c.operator in ("LIKE", "UNLIKE") and c.value:
            try:
                re.compile(c.value)
            except re.error as exc:
                out.append((where, f"{c.value!r} is not a valid regular expression ({exc})"))
    return out


def _resources(path: str, cpus: float, mem_mb: int) -> list[Issue]:
    out = []
    if cpus <= 0:
        out.append((f"{path}.cpus", f"must be more than 0, got {cpus}"))
    if mem_mb < 128:
        out.append((f"{path}.mem_mb", f"must be at least 128, got {mem_mb}"))
    return out


def _app(i: int, app: AppSpec) -> list[Issue]:
    path = f"apps[{i}]"
    out = _resources(path, app.cpus, app.mem_mb)
    if not NAME.match(app.name):
        out.append((f"{path}.name", f"{app.name!r} must be a DNS label: lower-case letters, "
                                    "digits and '-', starting with a letter, at most 40"))
    elif app.name in RESERVED_POD_NAMES:
        out.append((f"{path}.name", f"{app.name!r} is reserved for kmf's own pods"))
    if not 0 <= app.count <= MAX_INSTANCES:
        out.append((f"{path}.count", f"must be from 0 to {MAX_INSTANCES}, got {app.count}"))
    if not app.command:
        out.append((f"{path}.command", "must not be empty"))
    out += _constraints(f"{path}.placement", app.placement)
    out += app_issues(path, app)
    if app.autoscale is not None:
        out += autoscale_issues(f"{path}.autoscale", app.autoscale, app.count, MAX_INSTANCES)
    return out


def validate(spec: ServiceSpec, check_files: bool = False,
             known_versions: dict[str, tuple[str, ...]] | None = None) -> list[Issue]:
    """Every rule broken by `spec`; empty when it is valid.

    ``known_versions`` maps each pinned Kafka version to the modes it supports (from
    tools/kafka/versions.env); None skips that rule.
    """
    out: list[Issue] = []
    if not NAME.match(spec.name):
        out.append(("name", f"{spec.name!r} must be a DNS label: lower-case letters, digits and '-'"))
    m = spec.mesos
    if not re.match(r"^(zk://[^/]+/.+|https?://[^/]+:\d+/?)$", m.master):
        out.append(("mesos.master", f"{m.master!r} must be zk://host:port[,host:port]/path or http://host:port"))
    if m.failover_timeout_s <= 0:
        out.append(("mesos.failover_timeout_s", f"must be more than 0, got {m.failover_timeout_s}"))
    if not m.role or m.role.startswith(("-", ".", "/")) or " " in m.role:
        out.append(("mesos.role", f"{m.role!r} is not a valid Mesos role"))
    if m.secret_file and not m.principal:
        out.append(("mesos.principal", "a secret_file needs a principal"))
    if m.secret_env and not m.principal:
        out.append(("mesos.principal", "a secret_env needs a principal"))
    if m.secret_env and m.secret_file:
        out.append(("mesos.secret_env", "give the secret one way: secret_file or secret_env"))
    if m.secret_env and check_files and not os.environ.get(m.secret_env, "").strip():
        out.append(("mesos.secret_env", f"the environment variable {m.secret_env} is not set or empty "
                                        "(under Marathon: an env entry {\"secret\": \"<name>\"})"))
    z = spec.zookeeper
    if not all(HOST_PORT.match(h) for h in z.connect.split(",")):
        out.append(("zookeeper.connect", f"{z.connect!r} must be host:port[,host:port...]"))
    if not z.root.startswith("/") or z.root.endswith("/") and z.root != "/" or "//" in z.root:
        out.append(("zookeeper.root", f"{z.root!r} must be an absolute ZooKeeper path like /kmf"))
    if bool(z.digest_user) != bool(z.digest_password_file):
        out.append(("zookeeper.digest_user", "digest_user and digest_password_file go together"))
    k = spec.kafka
    out += _resources("kafka", k.cpus, k.mem_mb)
    if not 1 <= k.brokers <= MAX_INSTANCES:
        out.append(("kafka.brokers", f"must be from 1 to {MAX_INSTANCES}, got {k.brokers}"))
    if k.heap_mb < 64:
        out.append(("kafka.heap_mb", f"must be at least 64, got {k.heap_mb}"))
    elif k.heap_mb >= k.mem_mb:
        out.append(("kafka.heap_mb", f"must be less than mem_mb ({k.mem_mb}), got {k.heap_mb}"))
    if k.disk_mb <= 0:
        out.append(("kafka.disk_mb", f"must be more than 0, got {k.disk_mb}"))
    if k.replication is not None and not 1 <= k.replication <= max(k.brokers, 1):
        out.append(("kafka.replication", f"must be between 1 and the broker count {k.brokers}, got {k.replication}"))
    if k.min_insync_replicas is not None and not 1 <= k.min_insync_replicas <= k.replication_factor:
        out.append(("kafka.min_insync_replicas",
                    f"must be between 1 and the replication {k.replication_factor}, got {k.min_insync_replicas}"))
    if k.mode == "zookeeper" and k.controllers == "separate":
        out.append(("kafka.controllers", "ZooKeeper mode has no KRaft controllers"))
    if known_versions is not None:
        if k.version not in known_versions:
            out.append(("kafka.version", f"{k.version!r} is not a runtime kmf assembles "
                                         f"(known: {', '.join(sorted(known_versions))})"))
        elif k.mode not in known_versions[k.version]:
            out.append(("kafka.mode", f"Kafka {k.version} cannot run in {k.mode} mode "
                                      f"(it supports {', '.join(known_versions[k.version])})"))
    for key in k.overrides:
        if key in MANAGED_PROPERTIES:
            out.append((f"kafka.overrides.{key}", "kmf sets this property itself (identity, addresses, "
                                                   "storage or quorum); it cannot be overridden"))
    out += _constraints("kafka.placement", k.placement)
    if not 0 <= k.rebalance.throttle_mb_s <= 100_000:
        out.append(("kafka.rebalance.throttle_mb_s", f"must be 0 (no throttle) to 100000, got {k.rebalance.throttle_mb_s}"))
    if len(set(k.retired)) != len(k.retired) or any(r < 0 for r in k.retired):
        out.append(("kafka.retired", f"must be distinct node ids of 0 or more, got {list(k.retired)}"))
    elif k.mode == "kraft" and k.controllers == "combined" and any(r < quorum_size(k.brokers) for r in k.retired):
        out.append(("kafka.retired", f"{[r for r in k.retired if r < quorum_size(k.brokers)]} would be KRaft "
                                     f"controllers (the first {quorum_size(k.brokers)} brokers); they cannot retire"))
    if not 1 <= k.rebalance.max_moves <= 1000:
        out.append(("kafka.rebalance.max_moves", f"must be 1 to 1000, got {k.rebalance.max_moves}"))
    out += _security(spec)
    out += validate_declared(spec.topics, spec.users, brokers=k.brokers, mode=k.mode, sasl_enabled=k.sasl.enabled,
                             authorizer=k.sasl.authorizer, overrides=k.overrides, check_files=check_files)
    out += _executor(spec, check_files)
    names: set[str] = set()
    for i, app in enumerate(spec.apps):
        out += _app(i, app)
        if app.name in names:
            out.append((f"apps[{i}].name", f"{app.name!r} is used by another app"))
        names.add(app.name)
    p = spec.policies
    for field in ("backoff_initial_s", "backoff_max_s"):
        if getattr(p, field) <= 0:
            out.append((f"policies.{field}", f"must be more than 0, got {getattr(p, field)}"))
    if p.permanent_failure_timeout_s < 0:
        out.append(("policies.permanent_failure_timeout_s",
                    f"must be 0 (never replace automatically) or more, got {p.permanent_failure_timeout_s}"))
    if p.update_step_timeout_s < 0:
        out.append(("policies.update_step_timeout_s",
                    f"must be 0 (never report a waiting step as an error) or more, got {p.update_step_timeout_s}"))
    if p.maintenance_move_after_s < 0:
        out.append(("policies.maintenance_move_after_s",
                    f"must be 0 (always move a broker off an agent going into maintenance) or more, "
                    f"got {p.maintenance_move_after_s}"))
    if not 1 <= p.lag_sample_interval_s <= 300:  # NaN too
        out.append(("policies.lag_sample_interval_s", f"must be from 1 to 300 seconds, got {p.lag_sample_interval_s:g}"))
    if p.backoff_factor < 1:
        out.append(("policies.backoff_factor", f"must be at least 1, got {p.backoff_factor}"))
    if p.backoff_max_s < p.backoff_initial_s:
        out.append(("policies.backoff_max_s", "must not be less than backoff_initial_s"))
    if bool(spec.api.tls_cert_file) != bool(spec.api.tls_key_file):
        out.append(("api.tls_cert_file", "tls_cert_file and tls_key_file go together"))
    if not 0 <= spec.api.port <= 65535:
        out.append(("api.port", f"must be 0..65535, got {spec.api.port}"))
    if check_files:
        for path, value in (("mesos.secret_file", m.secret_file), ("api.token_file", spec.api.token_file),
                            ("zookeeper.digest_password_file", z.digest_password_file),
                            ("kafka.tls.ca_cert_file", k.tls.ca_cert_file),
                            ("kafka.tls.ca_key_file", k.tls.ca_key_file),
                            ("api.tls_cert_file", spec.api.tls_cert_file),
                            ("api.tls_key_file", spec.api.tls_key_file)):
            if value and not os.access(value, os.R_OK):
                out.append((path, f"{value!r} does not exist or is not readable"))
    return out


_URI = re.compile(r"^(https?://[^/\s]+/\S*|file:///\S+|/\S+)$")
_ONLY = {"served": ("artifacts_dir",), "urls": ("bundle_uri", "kafka_uris"),
         "preinstalled": ("pythonpath", "kafka_cache")}


def _executor(spec: ServiceSpec, check_files: bool) -> list[Issue]:
    """Where the executor comes from (config.models.ExecutorSpec). An agent's interpreter is not
    checked here: agents are other machines, and `python3` is looked up on their PATH."""
    e = spec.executor
    out: list[Issue] = []
    if not e.python.strip():
        out.append(("executor.python", "must name the agents' Python 3 (default python3, found on their PATH)"))
    for mode, fields in _ONLY.items():
        for field in fields:
            if mode != e.artifacts and getattr(e, field):
                out.append((f"executor.{field}", f"is only used with executor.artifacts: {mode} "
                                                 f"(this service has {e.artifacts})"))
    if e.artifacts == "urls":
        if not e.bundle_uri:
            out.append(("executor.bundle_uri", "executor.artifacts: urls needs the kmf bundle's URI "
                                               "(the kmf-<version>-py3.11-linux-x86_64.tar.gz that make setup builds)"))
        if spec.kafka.version not in e.kafka_uris:
            out.append(("executor.kafka_uris", f"executor.artifacts: urls needs a URI for Kafka {spec.kafka.version} "
                                               f"(kafka.version), e.g. {spec.kafka.version}: https://repo/kafka-"
                                               f"{spec.kafka.version}.tar.gz"))
        for field, uri in [("bundle_uri", e.bundle_uri), *((f"kafka_uris.{v}", u) for v, u in e.kafka_uris.items())]:
            if uri and not _URI.match(uri):
                out.append((f"executor.{field}", f"{uri!r} must be an http(s):// or file:// URI or an absolute "
                                                 "path, as the Mesos fetcher takes"))
            elif uri and not artifacts.is_archive(uri):
                out.append((f"executor.{field}", f"{uri!r} must be an archive the fetcher extracts "
                                                 f"({', '.join(artifacts.ARCHIVE_SUFFIXES)})"))
    if e.artifacts == "served" and check_files:
        where = artifacts.served_dir(e.artifacts_dir)
        wanted = [("the kmf bundle", artifacts.bundle_file()),
                  (f"Kafka {spec.kafka.version}", artifacts.kafka_file(spec.kafka.version))]
        missing = [f"{what} ({name})" for what, name in wanted if not (where / name).is_file()]
        if missing:
            source = ("executor.artifacts_dir" if e.artifacts_dir else
                      f"${artifacts.ENV_DIR}" if os.environ.get(artifacts.ENV_DIR) else "the default")
            out.append(("executor.artifacts", f"served, but {' and '.join(missing)} not found in {where} "
                                              f"({source}); `make setup` builds them into .cache/artifacts, or "
                                              f"point executor.artifacts_dir or ${artifacts.ENV_DIR} at them"))
    return out


def _security(spec: ServiceSpec) -> list[Issue]:
    tls = spec.kafka.tls
    out: list[Issue] = []
    if tls.inter_broker and not tls.enabled:
        out.append(("kafka.tls.inter_broker", "needs kafka.tls.enabled: true"))
    if bool(tls.ca_cert_file) != bool(tls.ca_key_file):
        out.append(("kafka.tls.ca_cert_file", "ca_cert_file and ca_key_file go together "
                                              "(or give neither: kmf then runs a CA of its own)"))
    if (tls.ca_cert_file or tls.ca_key_file) and not tls.enabled:
        out.append(("kafka.tls.ca_cert_file", "a CA is given but kafka.tls.enabled is false"))
    if not 0 < tls.cert_days <= 3650:
        out.append(("kafka.tls.cert_days", f"must be above 0 and at most 3650, got {tls.cert_days}"))
    elif tls.renew_before_days is not None and not 0 < tls.renew_before_days < tls.cert_days:
        out.append(("kafka.tls.renew_before_days", f"must be above 0 and below cert_days ({tls.cert_days}), "
                                                   f"got {tls.renew_before_days}"))
    if not 0 < tls.ca_days <= 36500:
        out.append(("kafka.tls.ca_days", f"must be above 0 and at most 36500, got {tls.ca_days}"))
    elif tls.ca_renew_before_days is not None and not 0 < tls.ca_renew_before_days < tls.ca_days:
        out.append(("kafka.tls.ca_renew_before_days", f"must be above 0 and below ca_days ({tls.ca_days}), "
                                                      f"got {tls.ca_renew_before_days}"))
    elif not 0 <= tls.ca_trust_overlap_days < tls.ca_renew_margin_days:
        # the rotation has to be through (both rolls included) before the old CA expires
        out.append(("kafka.tls.ca_trust_overlap_days", f"must be at least 0 and below the CA's renewal margin "
                                                       f"({tls.ca_renew_margin_days} days), got {tls.ca_trust_overlap_days}"))
    return out


# ----------------------------------------------------------------------------------- updates

def _flatten(value: object, prefix: str = "") -> dict[str, object]:
    if attrs.has(type(value)):
        out: dict[str, object] = {}
        for f in attrs.fields(type(value)):  # type: ignore[arg-type]  # attrs.has() does not narrow
            out.update(_flatten(getattr(value, f.name), f"{prefix}{f.name}."))
        return out
    if isinstance(value, dict):
        return {f"{prefix}{k}": v for k, v in value.items()} or {prefix[:-1]: {}}
    if isinstance(value, tuple) and value and attrs.has(type(value[0])):
        if isinstance(value[0], Constraint):
            return {prefix[:-1]: ",".join(str(c) for c in value)}
        out = {}
        names = [getattr(item, "name", None) for item in value]
        unique = None not in names and len(set(names)) == len(names)  # else (ACLs) by position
        for i, item in enumerate(value):
            out.update(_flatten(item, f"{prefix}{names[i] if unique else i}."))
        return out
    return {prefix[:-1]: value}


def describe_update(old: ServiceSpec, new: ServiceSpec) -> list[str]:
    """Field-level differences, as ``path: old → new`` lines."""
    a, b = _flatten(old), _flatten(new)
    lines = []
    for key in sorted(set(a) | set(b)):
        if a.get(key, "<absent>") != b.get(key, "<absent>"):
            lines.append(f"{key}: {a.get(key, '<absent>')!r} → {b.get(key, '<absent>')!r}")
    return lines


def check_update(old: ServiceSpec, new: ServiceSpec) -> list[str]:
    """Why `new` cannot replace the running `old` safely; empty when it can."""
    out = []
    if old.name != new.name:
        out.append(f"name: a service cannot be renamed ({old.name!r} → {new.name!r}); install a new one")
    migrating = migration_refusals(old, new)
    if migrating is not None:
        out += migrating
    elif old.kafka.mode != new.kafka.mode:
        out.append(f"kafka.mode: changing {old.kafka.mode} → {new.kafka.mode} in place is not supported "
                   "(ZooKeeper → KRaft is a migration: kafka.mode kraft with kafka.controllers separate)")
    if _major(new.kafka.version) < _major(old.kafka.version):
        out.append(f"kafka.version: downgrading {old.kafka.version} → {new.kafka.version} is not supported")
    if new.kafka.disk_mb < old.kafka.disk_mb:
        out.append(f"kafka.disk_mb: a volume cannot shrink ({old.kafka.disk_mb} → {new.kafka.disk_mb})")
    if old.kafka.retired != new.kafka.retired:
        out.append(f"kafka.retired: {list(old.kafka.retired)} → {list(new.kafka.retired)}: decommissioned broker "
                   f"ids change only through kmf pod decommission; keep `retired: {list(old.kafka.retired)}` "
                   "under kafka in the file")
    if old.kafka.controllers != new.kafka.controllers and migrating is None:
        out.append("kafka.controllers: the controller layout cannot change in place")
    if old.zookeeper.root != new.zookeeper.root:
        out.append("zookeeper.root: the state location cannot move under a running service")
    for name in ("tls", "sasl"):
        if getattr(old.kafka, name).enabled != getattr(new.kafka, name).enabled:
            out.append(f"kafka.{name}.enabled: a listener cannot be added or removed in place "
                       "(each broker's ports are fixed when its resources are reserved)")
    old_ca, new_ca = (old.kafka.tls.ca_cert_file, old.kafka.tls.ca_key_file), (new.kafka.tls.ca_cert_file,
                                                                            new.kafka.tls.ca_key_file)
    if old.kafka.tls.enabled and new.kafka.tls.enabled and old_ca != new_ca:
        # a new CA would be swapped in abruptly: clients trusting only the old one would fail; the
        # phased rotation with a trust overlap is kmf's own CA's (`kmf tls rotate-ca`)
        out.append("kafka.tls.ca_cert_file/ca_key_file: the CA cannot change in a config update (clients and "
                   "brokers that trust only the old CA would fail): kmf rotates only its own CA with a trust "
                   "overlap (kmf tls rotate-ca); see docs/configuration.md, TLS")
    if old.mesos.role != new.mesos.role:
        out.append("mesos.role: reserved resources belong to the old role; it cannot change in place")
    out += replication_changes(old.topics, new.topics, old.kafka.replication_factor)
    out += volume_changes(old.apps, new.apps)
    return out


def migration_refusals(old: ServiceSpec, new: ServiceSpec) -> list[str] | None:
    """None when `new` does not move `old` from ZooKeeper to KRaft; else why it cannot (empty:
    it can, and the update starts the migration: scheduler.core.zk_migration)."""
    if not (old.kafka.mode == "zookeeper" and new.kafka.mode == "kraft"):
        return None
    out = []
    if new.kafka.controllers != "separate":
        out.append("kafka.controllers: a ZooKeeper → KRaft migration needs dedicated controllers (controllers: "
                   "separate): Kafka migrates a cluster only with controller-only nodes")
    if new.kafka.version != old.kafka.version:
        out.append(f"kafka.version: keep {old.kafka.version} during the migration ({old.kafka.version} → "
                   f"{new.kafka.version}); upgrade once it is done (kmf plan show migration)")
    if old.kafka.tls.inter_broker or old.kafka.sasl.enabled:
        out.append("kafka.tls.inter_broker / kafka.sasl: a migration of a service with TLS between brokers or "
                   "SASL is not supported yet (the controllers would need the brokers' listener security)")
    same = attrs.evolve(new, kafka=attrs.evolve(new.kafka, mode=old.kafka.mode, controllers=old.kafka.controllers))
    if same != old:
        out.append("a migration update changes only kafka.mode (to kraft) and kafka.controllers (to separate); "
                   "make the other changes before or after it: " + "; ".join(describe_update(old, same)[:3]))
    return out


def declared_removals(old: ServiceSpec, new: ServiceSpec) -> tuple[list[str], list[str]]:
    """(topics, users) the update deletes from Kafka: declared before, not any more."""
    return removed(old.topics, old.users, new.topics, new.users)


def _major(version: str) -> int:
    try:
        return int(version.split(".")[0])
    except ValueError:
        return 0


def restart_overrides(overrides: dict[str, str]) -> dict[str, str]:
    """The overrides as far as a broker restart depends on them: live keys without their value.

    A live key's value is changed on the running brokers (config.live_broker_settings), but adding
    or removing the key changes the broker's static config: a removed override cannot be made live
    (deleting the broker's dynamic value falls back to the static server.properties, which holds
    the old value until a restart), so it needs a roll, and so does an added one, because a pure
    fingerprint cannot tell "added" from "removed" without the previous spec. The rolling
    fingerprint (scheduler/core/taskinfo.py) and `broker_restart_required` both use this, so they
    agree on which updates roll."""
    return {k: LIVE_VALUE if k in LIVE_BROKER_SETTINGS else v for k, v in overrides.items()}


def live_broker_settings(old: ServiceSpec, new: ServiceSpec) -> dict[str, str | None]:
    """Override changes to set on the running brokers: key → new value, None for a removed key
    (its dynamic value is deleted, and the roll `broker_restart_required` asks for does the rest)."""
    a, b = old.kafka.overrides, new.kafka.overrides
    return {k: b.get(k) for k in sorted(set(a) | set(b))
            if a.get(k) != b.get(k) and k in LIVE_BROKER_SETTINGS}


def broker_restart_required(old: ServiceSpec, new: ServiceSpec) -> bool:
    """True when brokers must roll: anything in `kafka` besides the count and live values
    (a live key added or removed rolls too, see `restart_overrides`)."""
    ko, kn = old.kafka, new.kafka
    same = attrs.evolve(ko, brokers=kn.brokers, overrides=kn.overrides) == kn
    return not same or restart_overrides(ko.overrides) != restart_overrides(kn.overrides)
