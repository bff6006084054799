"""`kmf scheduler --config FILE`: one scheduler instance (leader or standby).

Start-up: validate the config (exit 2 with every problem), connect ZooKeeper, initialise the
store, serve the API (standbys answer reads from ZooKeeper and redirect writes), and contend for
leadership. The leader loads its state, stores the config as the target (a changed file becomes
an update, refused with reasons when unsafe: exit 2), subscribes to Mesos with the stored
framework id and runs the decision loop until SIGTERM (exit 0, tasks keep running), lost
leadership or ZooKeeper session (exit 1: Marathon starts a fresh instance that stands in line),
or a Mesos refusal such as bad credentials (exit 1, with the master's reason).

Test fault hook (read here only): ``KMF_FAULT=exit_before_launch`` kills the process right after
a launch was persisted and before the ACCEPT is sent.
"""
from __future__ import annotations

import logging
import os
import signal
import socket
import sys
import threading
import time
from pathlib import Path
from typing import Any

from kazoo.client import KazooClient

import config
from config import ConfigError, ServiceSpec
from kmfwire.cluster_id import new_cluster_id
from kmfwire import artifacts as kmf_artifacts
from kmfwire.waiting import wait_until
from scheduler.api.metrics import LagCollector, Metrics, StateCollector
from scheduler.api.server import Api, ApiServer
from scheduler.api.views import broker_endpoint
from scheduler.core import actions as act
from scheduler.core import ca_rotation
from scheduler.core import events as ev
from scheduler.core.app_autoscale import group_lags
from scheduler.core import launch_config
from scheduler.core.construction import initial_state
from scheduler.core.events import CommandKind
from scheduler.core.refusals import Refusal
from scheduler.core.state import State
from scheduler.shell import artifacts as served_artifacts
from scheduler.shell.errors import StoreError
from scheduler.shell.data_moves import DataMover, tools_for
from scheduler.shell.declared_sync import DeclaredSync
from scheduler.shell.kafka_watch import KafkaWatcher
from scheduler.shell.lag_watch import LagWatcher
from scheduler.shell.leader import LeaderElection
from scheduler.shell.loop import Loop
from scheduler.shell.migration_watch import MigrationWatcher
from scheduler.shell.mesos import FrameworkSettings, MesosAdapter, read_secret
from scheduler.shell.store import StateStore, digest_acl
from scheduler.shell.tls import CaKeeper, TlsError, TlsLaunches

log = logging.getLogger("scheduler")

EXIT_OK, EXIT_FAILED, EXIT_CONFIG = 0, 1, 2
# the scheduler's ZooKeeper session: a suspended leader that has not got it back by then ends its term
ZK_SESSION_TIMEOUT_S = 10.0


def _read(path: str | None) -> str | None:
    return Path(path).read_text().strip() if path else None


def advertised_host(bind: str) -> str:
    if bind not in ("0.0.0.0", "::", ""):
        return bind
    return os.environ.get("LIBPROCESS_IP") or os.environ.get("HOST") or socket.gethostname()


def uninstalled_message(spec: ServiceSpec, store: StateStore, tombstone: dict[str, Any]) -> str:
    app = tombstone.get("marathon_app_id") or os.environ.get("MARATHON_APP_ID")
    when = time.strftime("%Y-%m-%d %H:%M:%S UTC", time.gmtime(float(tombstone.get("at") or 0)))
    remove = f"remove the Marathon app {app}" if app else "stop this scheduler"
    return (f"service {spec.name} was uninstalled at {when} and stays uninstalled: {remove}; to install "
            f"a new service under the same name, delete the ZooKeeper node {store.path('uninstalled')} first")


class Service:
    """The API's backend: the live loop when leading, ZooKeeper's state when standing by."""

    def __init__(self, spec: ServiceSpec, zk: KazooClient, store: StateStore) -> None:
        self.spec = spec
        self.zk = zk
        self.store = store
        self.loop: Loop | None = None
        self.election: LeaderElection | None = None
        self._standby: tuple[float, State] | None = None
        self._updating = threading.Lock()
        self.tombstone: dict[str, Any] | None = None  # set when the service was uninstalled
        self.declared: DeclaredSync | None = None  # the leader's reconciler of declared topics and users

    def uninstalled(self) -> dict[str, Any] | None:
        if self.tombstone is None:
            return None
        return {**self.tombstone, "message": uninstalled_message(self.spec, self.store, self.tombstone)}

    def role(self) -> str:
        if self.tombstone is not None:
            return "uninstalled"
        if self.election is not None and self.election.suspended:
            return "suspended"  # leading, not deciding until its ZooKeeper session is back
        leading = self.election is not None and self.election.is_leader
        return "leader" if leading and self.loop is not None and not self.loop.ended.is_set() else "standby"

    def leader_url(self) -> str | None:
        if self.election is None:
            return None
        contenders = self.election.contenders()
        return contenders[0] if contenders else None

    def zk_connected(self) -> bool:
        return bool(self.zk.connected)

    def mesos_master(self) -> str | None:
        return self.loop.master if self.role() == "leader" and self.loop is not None else None

    def state(self) -> State:
        if self.role() == "leader" and self.loop is not None:
            return self.loop.snapshot
        if self.tombstone is not None:
            return initial_state(self.spec, config.config_id(self.spec), self.tombstone.get("framework_id"),
                                 {}, {"uninstall": "true"})
        now = time.monotonic()
        if self._standby is None or now - self._standby[0] > 2.0:
            try:
                stored = self.store.load()
            except StoreError:
                found = self.store.tombstone()  # the leader has just uninstalled the service
                if found is None:
                    raise
                self.tombstone = found
                return self.state()
            spec = config.spec_from_json(stored.target_config) if stored.target_config else self.spec
            self._standby = (now, initial_state(spec, stored.target_config_id or config.config_id(spec),
                                                stored.framework_id, stored.tasks, stored.properties))
        return self._standby[1]

    def submit(self, kind: str, args: dict) -> act.Reply:
        if self.loop is None:
            return act.Reply("", False, {"message": "not the leader", "refusal": Refusal.UNAVAILABLE})
        if kind != CommandKind.UPDATE_CONFIG or not isinstance(args.get("spec"), ServiceSpec):
            return self.loop.submit(kind, args)
        with self._updating:  # one update at a time: each one's live diff is against the target it replaces
            return self._update_config(self.loop, args)

    def _update_config(self, loop: Loop, args: dict) -> act.Reply:
        """An update whose live broker settings are on every broker exactly when its target is stored.

        The order: (1) the core's own decision on the current snapshot, computed here without
        performing it (decide is pure), so that whatever the core would refuse (check_update, a
        scale-in check, ...) is refused before Kafka is touched; (2) set the live settings on every
        broker and read them back, undoing them and refusing the update when Kafka refuses one;
        (3) the real submit, which stores the target; if the core refuses it now (the state moved
        since (1)), the live settings are undone. Not the other way round: the core stores the
        target and starts rolling when it accepts, and a stored target cannot always be set back
        (check_update is not symmetric: a grown disk cannot shrink again), so a refusal by Kafka
        after it would leave the two disagreeing. What remains is a scheduler killed between (2)
        and (3): then Kafka has the new values and the target the old ones."""
        from scheduler.core.decide import decide
        from scheduler.core.pods import desired_pods
        from scheduler.shell import live_config

        spec: ServiceSpec = args["spec"]
        current = loop.snapshot
        live = config.live_broker_settings(current.spec, spec)
        if not live:
            return loop.submit("update_config", args)
        _, preview = decide(current, ev.Command("preview", CommandKind.UPDATE_CONFIG, args, time.time()))
        answer = next((a for a in preview if isinstance(a, act.Reply)), None)
        if answer is None or not answer.ok:
            return answer or act.Reply("", False, {"message": "the update was not answered",
                                                   "refusal": Refusal.INTERNAL})
        boot = broker_endpoint(current)["bootstrap_servers"]
        expected = [p.node_id for p in desired_pods(current.spec) if p.kind == "broker" and "broker" in p.roles]
        try:
            if not boot:
                raise live_config.LiveConfigError(None, None, "no broker has an address yet")
            applied = live_config.apply(boot, live, expected=expected)
        except live_config.LiveConfigError as exc:
            log.warning("config update refused: live settings: %s", exc)
            return act.Reply("", False, {
                "message": f"live broker settings not applied, nothing changed: {exc}",
                "refusal": Refusal.CONFLICT if exc.key else Refusal.UNAVAILABLE,
                "live": live, "live_error": {"broker": exc.broker, "key": exc.key, "reason": exc.reason,
                                             "undo_problems": exc.undo_problems}})
        reply = loop.submit("update_config", args)
        if reply.ok:
            reply.result["live_applied"] = applied.to_json()
            log.info("live broker settings applied and verified on brokers %s: %s",
                     ", ".join(map(str, sorted(applied.brokers))), live)
            return reply
        result = dict(reply.result or {})
        if reply.command_id and result.get("refusal") == Refusal.UNAVAILABLE:
            # no decision in time: the command is still queued and may yet be accepted, so undoing
            # could make Kafka disagree with the target the other way round
            result["message"] = (f"{result.get('message')}; the live settings {sorted(live)} are set on the "
                                 "brokers and the update may still be accepted: check GET /v1/config/target")
            return act.Reply(reply.command_id, False, result)
        problems = applied.undo()
        result["live_undone"] = not problems
        if problems:
            result["message"] = (f"{result.get('message')}; undoing the live settings failed, the brokers "
                                 f"may disagree with the target: {'; '.join(problems)}")
        return act.Reply(reply.command_id, False, result)

    def configurations(self) -> dict[str, Any]:
        return dict(self.store.load().configs)

    def declared_status(self) -> dict[str, Any]:
        if self.role() != "leader" or self.declared is None:
            return {"state": "standby: the leading scheduler reconciles (ask it)", "leader": self.leader_url()}
        return self.declared.status()

    def parse_config(self, text: str) -> ServiceSpec:
        return config.load_text(text, "PUT /v1/config", check_files=True)


def known_kafka_versions() -> dict[str, tuple[str, ...]] | None:
    """The pinned Kafka versions and the modes each supports, read from the versions file once at
    start (None when there is none): the core checks `scale brokers` against this data and
    reads no file itself."""
    return config.known_versions()


def _fault_hook(name: str | None) -> Any:
    """``exit_before_launch[:N]``: die (as kill -9 would) before the N-th ACCEPT that launches."""
    if not name or not name.startswith("exit_before_launch"):
        return None
    left = [int(name.split(":", 1)[1]) if ":" in name else 1]

    def hook(action: Any) -> None:
        if isinstance(action, act.Accept) and any(op["type"] == "LAUNCH" for op in action.operations):
            left[0] -= 1
            if left[0] <= 0:
                log.error("KMF_FAULT=%s: dying after the persist, before the ACCEPT", name)
                os._exit(137)
    return hook


def _submit_launch_file(service: Service, spec: ServiceSpec, launch_id: str, path: str,
                        settle_s: float = 60.0) -> None:
    """A changed launch file is an update like `kmf config update`: wait until the loop knows
    Mesos and (when brokers run) Kafka, so that the same checks can decide, then submit it."""
    loop = service.loop

    def settled() -> bool:
        if loop is None or loop.ended.is_set():
            return True
        snap = loop.snapshot
        return snap.connected and (snap.kafka is not None or not any(r.kind == "broker" for r in snap.tasks.values()))

    wait_until(settled, settle_s, 0.5)
    reply = service.submit("update_config", {"spec": spec, "launch_id": launch_id, "source": path})
    result = reply.result or {}
    if reply.ok:
        log.info("launch file %s applied as a config update: %s", path,
                 "; ".join(result.get("diff") or []) or result.get("message"))
    else:
        log.error("launch file %s refused as a config update: %s; the stored target config stays in force "
                  "(kmf config update %s, with --yes where asked, applies it)", path, result.get("message"), path)


def run(config_path: str) -> int:
    try:
        spec = config.load_file(config_path, check_files=True)
    except ConfigError as exc:
        for p in exc.problems:
            print(p, file=sys.stderr)
        return EXIT_CONFIG
    zk_auth = None
    if spec.zookeeper.digest_user:
        zk_auth = f"{spec.zookeeper.digest_user}:{_read(spec.zookeeper.digest_password_file)}"
    zk = KazooClient(hosts=spec.zookeeper.connect, timeout=ZK_SESSION_TIMEOUT_S,
                     auth_data=[("digest", zk_auth)] if zk_auth else None)
    try:
        zk.start(timeout=15)
    except Exception as exc:  # noqa: BLE001 - kazoo's timeout and connection errors
        print(f"cannot connect to ZooKeeper at {spec.zookeeper.connect}: {exc}", file=sys.stderr)
        return EXIT_FAILED
    store = StateStore(zk, spec.name, spec.zookeeper.root, acl=digest_acl(zk_auth))
    try:
        tombstone = store.tombstone()
        if tombstone is None:
            store.initialize()
    except StoreError as exc:
        print(f"state store: {exc}", file=sys.stderr)
        zk.stop()
        return EXIT_FAILED
    ca: CaKeeper | None = None
    if spec.kafka.tls.enabled:
        try:
            ca = CaKeeper(zk, store.base, store.acl, spec.name).load(spec)
        except TlsError as exc:
            print(f"kafka.tls: {exc}", file=sys.stderr)
            zk.stop()
            return EXIT_FAILED
    service = Service(spec, zk, store)
    service.tombstone = tombstone
    metrics = Metrics(spec.name)
    # the CA in use: after a rotation, the new one
    metrics.attach(StateCollector(service.state, service.role, service.zk_connected,
                                  lambda: ca.not_after if ca is not None else None))
    lag_watcher = LagWatcher(service.state)  # started once elected: only the leader samples
    metrics.attach(LagCollector(lambda: lag_watcher.latest))
    token = _read(spec.api.token_file)
    port = spec.api.port or int(os.environ.get("PORT0", "0") or 0)
    api_tls = (spec.api.tls_cert_file, spec.api.tls_key_file) if spec.api.tls_cert_file else None
    # whatever the mode, serve what is there: a config update may switch to executor.artifacts: served
    artifact_dir = kmf_artifacts.served_dir(spec.executor.artifacts_dir)
    artifact_files = served_artifacts.find(artifact_dir)
    # clients are given both CAs while a rotation runs (CaKeeper.trust_bundle)
    server = ApiServer(Api(service, metrics.registry, token, ca_cert=lambda: ca.trust_bundle() if ca else None,
                           artifacts=artifact_files, lag=lambda: lag_watcher.latest),
                       spec.api.bind, port, tls=api_tls).start()  # type: ignore[arg-type]
    url = f"{server.scheme}://{advertised_host(spec.api.bind)}:{server.port}/"
    log.info("API and web page at %s", url)
    # the agents fetch from the address the framework advertises (webui_url), not 127.0.0.1
    served = served_artifacts.served(artifact_files, url)
    log.info("serving %s from %s", ", ".join(sorted(f.name for f in artifact_files.values())) or "no artifact",
             artifact_dir)
    print(f"kmf scheduler: API at {url}", flush=True)

    stopping = threading.Event()
    exit_code = [EXIT_OK]
    election = LeaderElection(zk, store.path("leader"), url,
                              on_lost=lambda why: service.loop.stop(f"leadership lost: {why}", code=1)
                              if service.loop else None,
                              # a dropped connection pauses the loop (if there is one yet) until the
                              # same session is back: a ZooKeeper member's death costs no restart
                              on_suspended=lambda: service.loop.pause() if service.loop else False,
                              on_resumed=lambda: service.loop.resume() if service.loop else None,
                              max_suspended_s=ZK_SESSION_TIMEOUT_S)
    service.election = election

    def on_signal(signum: int, _frame: Any) -> None:
        from pymesos import process
        if signum == signal.SIGINT and getattr(process, "_exc_info", None) is not None:
            # pymesos interrupts the main thread when its IO thread dies; the adapter's watchdog
            # reports why (e.g. refused credentials) and the loop exits non-zero
            return
        log.info("signal %s: stopping (tasks keep running)", signum)
        stopping.set()
        if service.loop is not None:
            service.loop.stop(f"signal {signum}", code=0)
    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)

    def stay_uninstalled(found: dict[str, Any]) -> int:
        # uninstalled: stay up (Marathon would only restart an exiting scheduler) and say so in
        # /v1/health, as the DC/OS SDK's uninstall mode did; the operator removes the app
        service.tombstone = found
        log.warning("%s", uninstalled_message(spec, store, found))
        print(f"kmf scheduler: {uninstalled_message(spec, store, found)}", flush=True)
        while not stopping.wait(1.0):
            pass
        return EXIT_OK

    if tombstone is not None:
        try:
            return stay_uninstalled(tombstone)
        finally:
            server.stop()
            zk.stop()
            zk.close()

    adapter = None
    watcher = None
    migration_watcher = None
    mover = None
    syncer = None
    try:
        election.start()
        while not election.wait_elected(0.5):
            if stopping.is_set():
                return EXIT_OK
            if election.ended:
                # the leader's uninstall deletes the election's node too: then stay uninstalled
                found = store.tombstone()
                return stay_uninstalled(found) if found is not None else EXIT_FAILED
        store.set_fence(election.lock_node)
        log.info("elected leader of %s", spec.name)
        tombstone = store.tombstone()
        if tombstone is not None:  # the leader this one stood by for uninstalled the service
            return stay_uninstalled(tombstone)
        if ca is not None:
            try:  # read again: the leader this one stood by for may have rotated the CA meanwhile
                ca.load(spec)
                if ca.not_after is not None:  # the core decides from it when the CA is due for rotation
                    store.put("properties", ca_rotation.NOT_AFTER_KEY, repr(ca.not_after))
            except (TlsError, StoreError) as exc:
                print(f"kafka.tls: {exc}", file=sys.stderr)
                return EXIT_FAILED
        stored = store.load()
        launch_id = launch_config.launch_id(spec)  # without this instance's own api settings
        target = config.spec_from_json(stored.target_config) if stored.target_config is not None else None
        begin = launch_config.start(target, stored.target_config_id, spec, launch_id,
                                    stored.properties.get(launch_config.LAUNCH_ID))
        if begin.seed:
            log.info("new service: the launch file %s is the first target config (%s)", config_path,
                     begin.config_id)
            store.apply_config(begin.config_id, config.spec_to_json(spec))
            store.put("properties", launch_config.LAUNCH_ID, launch_id)
            stored = store.load()
        elif begin.update:
            log.info("the launch file %s changed since the last start: submitting it as a config update (%s)",
                     config_path, "; ".join(config.describe_update(begin.spec, spec)) or "no field")
        else:
            log.info("target config %s from ZooKeeper stays in force (launch file %s unchanged since the "
                     "last start)", begin.config_id, config_path)
        state = initial_state(begin.spec, begin.config_id, stored.framework_id, stored.tasks, stored.properties,
                              cluster_id=new_cluster_id(), served=served, kafka_versions=known_kafka_versions())
        loop = Loop(state, store, None, on_decision=metrics.observe)
        loop.fault = _fault_hook(os.environ.get("KMF_FAULT"))
        secret = (read_secret(spec.mesos.secret_file) if spec.mesos.secret_file else
                  os.environ[spec.mesos.secret_env].strip() if spec.mesos.secret_env else None)
        settings = FrameworkSettings(
            name=spec.name, user=spec.mesos.user, role=begin.spec.mesos.role, principal=begin.spec.mesos.principal,
            secret=secret, failover_timeout=spec.mesos.failover_timeout_s,
            checkpoint=spec.mesos.checkpoint, webui_url=url, hostname=advertised_host(spec.api.bind),
            labels={"kmf.service": spec.name,
                    **({"marathon.app_id": os.environ["MARATHON_APP_ID"]} if os.environ.get("MARATHON_APP_ID") else {})})
        # a scheduler that lost its leadership never subscribes again (it would oust the new leader)
        adapter = MesosAdapter(settings, spec.mesos.master, loop.from_mesos, store.set_framework_id,
                               may_subscribe=lambda: election.is_leader)
        # broker launches get their TLS certificates on the way out (issued per launch)
        loop.adapter = (TlsLaunches(adapter, ca, spec.kafka.tls.cert_days,
                                    lambda: ca_rotation.launch_material(loop.snapshot))
                        if ca is not None else adapter)
        service.loop = loop
        if stopping.is_set():
            return EXIT_OK
        adapter.start(stored.framework_id)
        watcher = KafkaWatcher(lambda: loop.snapshot, loop.put).start()
        migration_watcher = MigrationWatcher(zk, lambda: loop.snapshot, loop.put).start()
        lag_watcher.on_sample = lambda sample: loop.put(ev.LagSampled(group_lags(sample), time.time(),
                                                                            sample.get("sampled_at")))
        lag_watcher.start()
        mover = loop.data_mover = DataMover(lambda st: tools_for(artifact_files, st.spec.kafka.version),
                                            lambda: loop.snapshot, loop.put).start()
        syncer = service.declared = DeclaredSync(lambda: loop.snapshot, loop.put,
                                                 lambda st: tools_for(artifact_files, st.spec.kafka.version)).start()
        if begin.update:
            threading.Thread(target=_submit_launch_file, args=(service, spec, launch_id, config_path),
                             name="kmf-launch-update", daemon=True).start()
        loop.run()
        if loop.end_reason:
            (log.info if loop.exit_code == 0 else log.error)("stopped: %s", loop.end_reason)
            if loop.exit_code:
                print(f"kmf scheduler stopped: {loop.end_reason}", file=sys.stderr)
        exit_code[0] = loop.exit_code
        return exit_code[0]
    except StoreError as exc:
        print(f"state store: {exc}", file=sys.stderr)
        return EXIT_FAILED
    finally:
        if watcher is not None:
            watcher.stop()
        if migration_watcher is not None:
            migration_watcher.stop()
        lag_watcher.stop()
        if mover is not None:
            mover.stop()
        if syncer is not None:
            syncer.stop()
        if adapter is not None and not (service.loop and service.loop.torn_down):
            adapter.stop("scheduler stopping")
        election.stop()
        server.stop()
        zk.stop()
        zk.close()
