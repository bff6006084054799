"""The pymesos adapter: FrameworkInfo, driver life cycle, callbacks → events, calls → master.

Traps of pymesos' scheduler driver (0.3.15) handled here:

* The driver is always built with ``failover=True`` and stopped with ``stop(failover=True)``: a
  plain ``stop()``/``abort()`` or an exception escaping the IO thread would send TEARDOWN and kill
  every task. Only `teardown()` (uninstall) tears down.
* Every callback only converts its arguments into a `mesos_events` value and hands it to `emit`,
  inside a catch-all: no exception ever reaches pymesos.
* ``failover_timeout`` is always set (default one week; pymesos would send 100 s).
* Acknowledgements are explicit (``implicit_acknowledgements=False``): the loop acknowledges an
  update after it has been persisted.
* An ERROR event ends this driver for good (``stop(failover=True)``): after "Framework failed over"
  pymesos would re-subscribe and steal the framework back from the new instance (ping-pong);
  after "Framework has been removed" it would loop forever — there the stored id is forgotten.
* Heartbeat watchdog: no event for `heartbeat_misses` heartbeat intervals → forced reconnect
  (``change_master(None)``, wait, then the old master again), since pymesos never notices a
  half-open connection.
* Calls made while disconnected are dropped by pymesos; here they return False (logged) so the
  caller knows nothing was sent and relies on reconciliation.
* No SUBSCRIBE without leadership (`may_subscribe`, the leader election's state, checked as each
  connection's SUBSCRIBE is built and before a forced reconnect): a stale leader's reconnect
  would fail the framework over to it, away from the scheduler that now leads.
* Re-subscription backs off: pymesos reconnects at once after a 307 or 503 answer or a closed
  stream, so a master that is not elected yet (or redirects to a leader that is gone) would be
  dialled thousands of times a second; from the second closed connection without a SUBSCRIBED in
  between, each new attempt waits 0.25 s doubling to 8 s, with jitter.
* ``zk://`` master URLs: the master path is created before ``driver.start()``; otherwise kazoo's
  ChildrenWatch stops silently and the driver never finds a master.
* The newly assigned framework id is stored (by `on_framework_id`) the moment SUBSCRIBED arrives,
  before anything else happens, and passed back in on every start.
"""
from __future__ import annotations

import functools
import json
import logging
import random
import threading
import time
from pathlib import Path
from typing import Any, Callable, Mapping, Sequence

import attrs
from pymesos import MesosSchedulerDriver, Scheduler

from kmfio import httpjson
from kmfwire.waiting import wait_until
from scheduler.shell import mesos_events as ev
from scheduler.shell.errors import MesosError

log = logging.getLogger(__name__)

ONE_WEEK = 7 * 24 * 3600.0
CAPABILITIES = ("PARTITION_AWARE", "TASK_KILLING_STATE")
FAILED_OVER = "Framework failed over"
REMOVED = "Framework has been removed"
RESUBSCRIBE_BACKOFF_S = 0.25
RESUBSCRIBE_BACKOFF_MAX_S = 8.0


# ---------------------------------------------------------------------------------- pure parts


@attrs.frozen
class FrameworkSettings:
    """What the framework registers as (FrameworkInfo fields)."""

    name: str
    user: str
    role: str = "*"
    principal: str | None = None
    secret: str | None = attrs.field(default=None, repr=False)
    failover_timeout: float = ONE_WEEK
    checkpoint: bool = True
    webui_url: str | None = None
    hostname: str | None = None
    labels: Mapping[str, str] = attrs.field(factory=dict)
    capabilities: Sequence[str] = CAPABILITIES


def framework_info(settings: FrameworkSettings, framework_id: str | None) -> dict[str, Any]:
    """The FrameworkInfo dict for pymesos; carries `framework_id` to fail over to it."""
    if settings.failover_timeout <= 0:
        raise MesosError(f"failover_timeout must be positive, got {settings.failover_timeout}")
    info: dict[str, Any] = {
        "name": settings.name,
        "user": settings.user,
        "role": settings.role,
        "failover_timeout": float(settings.failover_timeout),
        "checkpoint": bool(settings.checkpoint),
        "capabilities": [{"type": c} for c in settings.capabilities],
    }
    if settings.principal:
        info["principal"] = settings.principal
    if settings.webui_url:
        info["webui_url"] = settings.webui_url
    if settings.hostname:
        info["hostname"] = settings.hostname
    if settings.labels:
        info["labels"] = {"labels": [{"key": k, "value": v}
                                     for k, v in sorted(settings.labels.items())]}
    if framework_id:
        info["id"] = {"value": framework_id}
    return info


def parse_zk_master(uri: str) -> tuple[str, str] | None:
    """``zk://h1:2181,h2:2181/mesos`` → (``h1:2181,h2:2181``, ``/mesos``); None for host:port."""
    for prefix in ("zk://", "zoo://"):
        if uri.startswith(prefix):
            rest = uri[len(prefix):]
            hosts, slash, path = rest.partition("/")
            if "@" in hosts:
                raise MesosError(f"master URL {uri!r}: user:password@ is not supported by pymesos")
            if not hosts or not slash or not path.strip("/"):
                raise MesosError(f"master URL {uri!r}: expected zk://host:port[,host:port]/path")
            return hosts, "/" + path.strip("/")
    if "://" in uri and not uri.startswith(("http://", "https://")):
        raise MesosError(f"master URL {uri!r}: expected zk://…, http://host:port or host:port")
    return None


def driver_master_uri(uri: str) -> str:
    """What pymesos takes: zk URLs as they are, ``http://host:port/`` reduced to ``host:port``."""
    if uri.startswith(("http://", "https://")):
        rest = uri.split("://", 1)[1].rstrip("/")
        if "/" in rest:
            raise MesosError(f"master URL {uri!r}: expected http://host:port without a path")
        if uri.startswith("https://"):
            raise MesosError(f"master URL {uri!r}: pymesos speaks plain HTTP only")
        return rest
    return uri


def read_secret(path: str | Path) -> str:
    """The framework secret from a file (trailing newline dropped)."""
    try:
        secret = Path(path).read_text(encoding="utf-8").strip()
    except OSError as exc:
        raise MesosError(f"cannot read the framework secret file {path}: {exc.strerror}") from exc
    if not secret:
        raise MesosError(f"framework secret file {path} is empty")
    return secret


def ensure_master_path(uri: str, timeout: float = 15.0) -> None:
    """Create the master znode of a zk:// URL if missing: pymesos' detection watches its children and,
    when the znode does not exist yet, silently never detects a master."""
    parsed = parse_zk_master(uri)
    if parsed is None:
        return
    from kazoo.client import KazooClient

    hosts, path = parsed
    client = KazooClient(hosts=hosts)
    try:
        client.start(timeout=timeout)
        client.ensure_path(path)
    except Exception as exc:  # noqa: BLE001 - kazoo raises several unrelated types
        raise MesosError(f"cannot reach ZooKeeper {hosts} to prepare master path {path}: {exc!r}")
    finally:
        client.stop()
        client.close()


# ---------------------------------------------------------------------------------- the driver


def resubscribe_pause(closes: int, jitter: float = 1.0) -> float:
    """Seconds to wait before dialling the master again after `closes` connections ended without
    a SUBSCRIBED: none after the first (a stream that simply ended), then doubling to the cap."""
    if closes < 2:
        return 0.0
    return min(RESUBSCRIBE_BACKOFF_MAX_S, RESUBSCRIBE_BACKOFF_S * 2 ** (closes - 2)) * jitter


class _Driver(MesosSchedulerDriver):
    """pymesos' driver, remembering the heartbeat interval SUBSCRIBED announced and backing off
    between connections that end without a subscription."""

    heartbeat_interval: float | None = None
    closes_since_subscribed = 0
    # monotonic time the last SUBSCRIBE went out, or will go out once the backoff pause ends
    dialled_at = 0.0

    def on_subscribed(self, info):  # noqa: ANN001 - pymesos signature
        self.closes_since_subscribed = 0
        interval = info.get("heartbeat_interval_seconds")
        self.heartbeat_interval = float(interval) if interval else None
        super().on_subscribed(info)

    def on_close(self):  # noqa: ANN201 - pymesos: every connection's end, whatever the reason
        self.closes_since_subscribed += 1
        super().on_close()

    # whether a SUBSCRIBE may go out now (the adapter's `may_subscribe`: still the leader)
    may_subscribe: Callable[[], bool] = staticmethod(lambda: True)

    def gen_request(self):  # noqa: ANN201 - pymesos: builds SUBSCRIBE for each new connection
        # runs on the IO thread outside the driver lock, right before a new connection is used
        if not self.may_subscribe():
            # A scheduler that lost its leadership must not subscribe: the master would fail the
            # new leader's framework over to it (seen: a leader paused past its ZooKeeper session
            # woke up, its watchdog forced a reconnect, and its SUBSCRIBE ousted the standby that
            # had taken over). Hold this connection until the term resumes (a suspended ZooKeeper
            # connection back with the same session) or the driver stops (the term is over);
            # pymesos then sees the stop before it writes anything.
            log.warning("not subscribing to %s: this scheduler is not leading now", self.master)
            wait_until(lambda: self.may_subscribe() or not self._started, None, 0.05)
        pause = resubscribe_pause(self.closes_since_subscribed, random.uniform(0.8, 1.2))
        if pause:
            log.warning("master %s: %d connections ended without a subscription; next attempt in %.1fs",
                        self.master, self.closes_since_subscribed, pause)
            self.dialled_at = time.monotonic() + pause
            wait_until(lambda: not self._started, pause, 0.05)  # a stop() cuts the pause short
        self.dialled_at = time.monotonic()
        return super().gen_request()


def _guarded(method: Callable) -> Callable:
    """Run a pymesos callback; log and swallow anything it raises: an exception escaping a callback
    aborts pymesos' IO thread, which sends TEARDOWN and kills every task."""

    @functools.wraps(method)
    def wrapper(self: "MesosAdapter", *args: Any) -> None:
        self._last_sign_of_life = self._monotonic()
        try:
            method(self, *args)
        except Exception:  # noqa: BLE001 - an exception here would tear the framework down
            log.exception("scheduler callback %s failed; event dropped", method.__name__)

    return wrapper


class MesosAdapter(Scheduler):
    """Owns one pymesos driver. Callbacks run on pymesos' IO thread; calls on the loop thread."""

    def __init__(
        self,
        settings: FrameworkSettings,
        master_uri: str,
        emit: Callable[[ev.MesosEvent], None],
        on_framework_id: Callable[[str | None], None],
        *,
        heartbeat_misses: float = 5.0,
        default_heartbeat: float = 15.0,
        clock: Callable[[], float] = time.time,
        monotonic: Callable[[], float] = time.monotonic,
        may_subscribe: Callable[[], bool] = lambda: True,
    ) -> None:
        parse_zk_master(master_uri)  # validate early
        self._may_subscribe = may_subscribe
        self.settings = settings
        self.master_uri = driver_master_uri(master_uri)
        self._emit_raw = emit
        self._on_framework_id = on_framework_id
        self._heartbeat_misses = heartbeat_misses
        self._default_heartbeat = default_heartbeat
        self._clock = clock
        self._monotonic = monotonic
        self._last_sign_of_life = monotonic()
        self._driver: _Driver | None = None
        self._stopping = threading.Event()
        self._stopped_reason: str | None = None
        self._watchdog: threading.Thread | None = None
        self.forced_reconnects = 0

    # life cycle --------------------------------------------------------------------------------
    @property
    def driver(self) -> _Driver:
        if self._driver is None:
            raise MesosError("the Mesos driver is not started")
        return self._driver

    @property
    def connected(self) -> bool:
        return self._driver is not None and self._driver.connected

    @property
    def framework_id(self) -> str | None:
        return self._driver.framework_id if self._driver is not None else None

    def start(self, framework_id: str | None) -> None:
        """Subscribe, failing over to `framework_id` when one is stored."""
        info = framework_info(self.settings, framework_id)
        ensure_master_path(self.master_uri)
        self._driver = _Driver(
            self, info, self.master_uri,
            implicit_acknowledgements=False,
            principal=self.settings.principal,
            secret=self.settings.secret,
            failover=True,
        )
        self._driver.may_subscribe = self._may_subscribe  # type: ignore[method-assign]
        self._last_sign_of_life = self._monotonic()
        log.info("subscribing to %s as %s (framework id %s)", self.master_uri,
                 self.settings.name, framework_id or "new")
        self._driver.start()
        self._watchdog = threading.Thread(target=self._watch, name="kmf-mesos-watchdog",
                                          daemon=True)
        self._watchdog.start()

    def stop(self, reason: str = "stopped") -> None:
        """Disconnect, keeping the framework and its tasks (failover); idempotent."""
        self._stop(reason, failover=True)

    def teardown(self) -> None:
        """Uninstall only: TEARDOWN the framework — the master kills every task."""
        log.warning("tearing down framework %s: every task will be killed", self.framework_id)
        self._stop("torn down (uninstall)", failover=False)

    def join(self, timeout: float | None = None) -> None:
        if self._driver is not None and self._driver._io_thread is not None:
            self._driver._io_thread.join(timeout)

    def _stop(self, reason: str, failover: bool) -> None:
        if self._stopped_reason is None:
            self._stopped_reason = reason
        self._stopping.set()
        if self._driver is not None:
            self._driver.stop(failover=failover)

    @property
    def stopped_reason(self) -> str | None:
        return self._stopped_reason

    # heartbeat watchdog -----------------------------------------------------------------------
    def _watch(self) -> None:
        while not self._stopping.wait(0.25):
            try:
                self._check_liveness()
            except Exception:  # noqa: BLE001 - the watchdog must keep watching
                log.exception("heartbeat watchdog check failed")

    def _check_liveness(self) -> None:
        driver = self.driver
        if driver.aborted and not self._stopping.is_set():
            self._driver_aborted()
            return
        if driver.master is None:  # no master known (zk detection): nothing to watch
            self._last_sign_of_life = self._monotonic()
            return
        interval = driver.heartbeat_interval or self._default_heartbeat
        # silence while we hold back our own SUBSCRIBE is not the master's: counting it let a
        # backoff longer than the watchdog's limit end every connection before it was used
        # (seen after a master restart: never subscribed again)
        silent = self._monotonic() - max(self._last_sign_of_life, driver.dialled_at)
        if silent > self._heartbeat_misses * interval:
            self.force_reconnect(f"nothing from the master for {silent:.1f} s "
                                 f"(heartbeat interval {interval:g} s)")

    def force_reconnect(self, why: str) -> None:
        """Drop the connection and subscribe again to the same master (two steps: pymesos
        ignores a change to the address it already has)."""
        driver = self.driver
        old = driver.master
        if old is None:
            return
        if not self._may_subscribe():
            # not leading now (its term suspended or over): a dropped connection could not be
            # subscribed again until it leads, so keep the one there is
            log.warning("not forcing a reconnect to %s while not leading: %s", old, why)
            self._last_sign_of_life = self._monotonic()
            return
        self.forced_reconnects += 1
        log.warning("forcing a reconnect to %s: %s", old, why)
        driver.change_master(None)
        wait_until(lambda: driver.master is None, 5.0, 0.02, clock=self._monotonic, sleep=self._stopping.wait)
        self._last_sign_of_life = self._monotonic()
        if not self._stopping.is_set() and self._may_subscribe():
            driver.change_master(old)
        self._last_sign_of_life = self._monotonic()

    def _driver_aborted(self) -> None:
        from pymesos import process  # the aborted IO thread parks its exception there

        exc_info = getattr(process, "_exc_info", None)
        detail = repr(exc_info[1]) if exc_info else "see the log"
        if "HTTP 401" not in detail and "HTTP 403" not in detail:
            # pymesos loses the status of a refusal whose body arrives after its headers (it
            # raises a TypeError instead): ask the master once more, with a call that changes nothing
            refused = self._refusal()
            if refused:
                detail = f"{refused} ({detail})"
        reason = f"the Mesos driver stopped: {detail}"
        if "HTTP 401" in detail or "HTTP 403" in detail:
            reason = f"the master refused the framework (authentication/authorization): {detail}"
        log.error("%s", reason)
        self._stop(reason, failover=True)
        self._emit(ev.DriverStopped(reason, False, self._clock()))

    def _refusal(self) -> str | None:
        """`HTTP 401: …` / `HTTP 403: …` when the master refuses this framework's credentials, from a
        REVIVE for a framework that does not exist (the master authenticates before it looks the
        framework up, and a REVIVE without a stream subscribes nothing)."""
        master = getattr(self._driver, "master", None) or self.master_uri.removeprefix("http://")
        if not master or "://" in master:
            return None
        host, _, port = master.rpartition(":")
        headers = {"Content-Type": "application/json", "Accept": "application/json"}
        if self.settings.principal and self.settings.secret is not None:
            headers.update(httpjson.basic(self.settings.principal, self.settings.secret))
        body = json.dumps({"type": "REVIVE", "framework_id": {"value": "kmf-credentials-check"}})
        try:
            reply = httpjson.post(host, int(port), "/api/v1/scheduler", body.encode(), headers, 5,
                                  limit=2000)
        except (OSError, ValueError):
            return None
        text = reply.body.decode(errors="replace").strip()
        return f"HTTP {reply.status}: {text}" if reply.status in (401, 403) else None

    # calls (loop thread) ------------------------------------------------------------------------
    def _call(self, what: str, func: Callable[[], Any]) -> bool:
        driver = self._driver
        if driver is None or not driver.connected or self._stopping.is_set():
            log.info("not connected: %s dropped (reconciliation covers it)", what)
            return False
        try:
            func()
        except (RuntimeError, OSError) as exc:
            if "Not connected" in str(exc):
                log.info("connection lost: %s dropped", what)
                return False
            raise MesosError(f"{what} failed at master {driver.master}: {exc}") from exc
        return True

    def accept(self, offer_ids: Sequence[str], operations: Sequence[Mapping[str, Any]],
               refuse_seconds: float | None = None) -> bool:
        filters = None if refuse_seconds is None else {"refuse_seconds": refuse_seconds}
        ids = [{"value": i} for i in offer_ids]
        return self._call(f"ACCEPT {list(offer_ids)}",
                          lambda: self.driver.acceptOffers(ids, list(operations), filters))

    def decline(self, offer_ids: Sequence[str], refuse_seconds: float | None = None) -> bool:
        filters = None if refuse_seconds is None else {"refuse_seconds": refuse_seconds}
        ids = [{"value": i} for i in offer_ids]
        return self._call(f"DECLINE {list(offer_ids)}",
                          lambda: self.driver.declineOffer(ids, filters))

    def answer_inverse_offers(self, offer_ids: Sequence[str], accept: bool,
                              refuse_seconds: float | None = None) -> bool:
        """ACCEPT_INVERSE_OFFERS or DECLINE_INVERSE_OFFERS (Mesos maintenance)."""
        filters = None if refuse_seconds is None else {"refuse_seconds": refuse_seconds}
        ids = [{"value": i} for i in offer_ids]
        if accept:  # pymesos' acceptInverseOffers raises when not connected: _call checks first
            return self._call(f"ACCEPT_INVERSE_OFFERS {list(offer_ids)}",
                              lambda: self.driver.acceptInverseOffers(ids, filters))
        return self._call(f"DECLINE_INVERSE_OFFERS {list(offer_ids)}",
                          lambda: self.driver.declineInverseOffer(ids, filters))

    def kill(self, task_id: str, agent_id: str | None = None) -> bool:
        kill: dict[str, Any] = {"task_id": {"value": task_id}}
        if agent_id:
            kill["agent_id"] = {"value": agent_id}
        return self._call(f"KILL {task_id}", lambda: self._send("KILL", "kill", kill))

    def reconcile(self, tasks: Sequence[tuple[str, str | None]]) -> bool:
        """Explicit reconciliation of (task id, agent id or None); empty → implicit."""
        entries = []
        for task_id, agent_id in tasks:
            entry: dict[str, Any] = {"task_id": {"value": task_id}}
            if agent_id:
                entry["agent_id"] = {"value": agent_id}
            entries.append(entry)
        what = f"RECONCILE {len(entries)} task(s)" if entries else "RECONCILE (implicit)"
        return self._call(what, lambda: self._send("RECONCILE", "reconcile", {"tasks": entries}))

    def suppress(self, roles: Sequence[str] = ()) -> bool:
        return self._call("SUPPRESS", lambda: self.driver.suppressOffers(tuple(roles)))

    def revive(self, roles: Sequence[str] = ()) -> bool:
        return self._call("REVIVE", lambda: self.driver.reviveOffers(tuple(roles)))

    def acknowledge(self, status: Mapping[str, Any]) -> bool:
        if "uuid" not in status:
            return True  # reconciliation answers and master-generated updates are not acked
        task_id = status.get("task_id", {}).get("value")
        return self._call(f"ACKNOWLEDGE {task_id}",
                          lambda: self.driver.acknowledgeStatusUpdate(dict(status)))

    def message(self, executor_id: str, agent_id: str, data_b64: str) -> bool:
        return self._call(f"MESSAGE to {executor_id}", lambda: self.driver.sendFrameworkMessage(
            {"value": executor_id}, {"value": agent_id}, data_b64))

    def _send(self, call_type: str, field: str, body: Mapping[str, Any]) -> None:
        # pymesos' killTask/reconcileTasks drop agent_id (they send only the task id); its private
        # _send posts with the right stream id and credentials.
        driver = self.driver
        driver._send({"type": call_type, "framework_id": {"value": driver.framework_id},
                      field: dict(body)})

    # callbacks (pymesos IO thread) ---------------------------------------------------------------
    def _emit(self, event: ev.MesosEvent) -> None:
        try:
            self._emit_raw(event)
        except Exception:  # noqa: BLE001
            log.exception("could not enqueue %s", type(event).__name__)

    @_guarded
    def registered(self, driver, framework_id, master_info):  # noqa: ANN001
        fid = framework_id["value"]
        log.info("registered with master %s as framework %s", driver.master, fid)
        try:
            self._on_framework_id(fid)  # stored before anything else can happen
        except Exception as exc:  # noqa: BLE001
            reason = f"cannot store the new framework id {fid}: {exc}"
            log.error("%s", reason)
            self._stop(reason, failover=True)
            self._emit(ev.DriverStopped(reason, False, self._clock()))
            return
        self._emit(ev.Subscribed(fid, str(driver.master), False, self._clock()))

    @_guarded
    def reregistered(self, driver, master_info):  # noqa: ANN001
        log.info("re-registered with master %s as framework %s", driver.master,
                 driver.framework_id)
        self._emit(ev.Subscribed(driver.framework_id, str(driver.master), True, self._clock()))

    @_guarded
    def disconnected(self, driver):  # noqa: ANN001
        self._emit(ev.Disconnected(self._clock()))

    @_guarded
    def resourceOffers(self, driver, offers):  # noqa: ANN001,N802
        self._emit(ev.OffersReceived(tuple(offers), self._clock()))

    @_guarded
    def offerRescinded(self, driver, offer_id):  # noqa: ANN001,N802
        self._emit(ev.OfferRescinded(offer_id["value"], self._clock()))

    @_guarded
    def statusUpdate(self, driver, status):  # noqa: ANN001,N802
        self._emit(ev.StatusUpdate(status, self._clock()))

    @_guarded
    def slaveLost(self, driver, agent_id):  # noqa: ANN001,N802
        self._emit(ev.AgentLost(agent_id["value"], self._clock()))

    @_guarded
    def executorLost(self, driver, executor_id, agent_id, status):  # noqa: ANN001,N802
        self._emit(ev.ExecutorLost(executor_id["value"], agent_id["value"], status,
                                   self._clock()))

    @_guarded
    def frameworkMessage(self, driver, executor_id, agent_id, data):  # noqa: ANN001,N802
        self._emit(ev.FrameworkMessage(executor_id["value"], agent_id["value"], data,
                                       self._clock()))

    @_guarded
    def processHeartBeat(self, driver=None):  # noqa: ANN001,N802
        pass  # _guarded already noted the sign of life

    @_guarded
    def inverseOffers(self, driver, offers):  # noqa: ANN001,N802
        self._emit(ev.InverseOffersReceived(tuple(offers), self._clock()))

    @_guarded
    def inverseOfferRescinded(self, driver, offer_id):  # noqa: ANN001,N802
        self._emit(ev.InverseOfferRescinded(offer_id["value"], self._clock()))

    @_guarded
    def error(self, driver, message):  # noqa: ANN001
        forget = message.startswith(REMOVED)
        if message.startswith(FAILED_OVER):
            reason = "another scheduler instance took over the framework (failed over)"
        elif forget:
            reason = "the master removed the framework; its stored id is forgotten"
        else:
            reason = f"the master reported an error: {message}"
        log.error("ERROR from master %s: %s → stopping this driver (failover)", driver.master,
                  message)
        self._stop(reason, failover=True)  # never plain stop(): that would send TEARDOWN
        if forget:
            try:
                self._on_framework_id(None)
            except Exception:  # noqa: BLE001
                log.exception("could not forget the removed framework id")
        self._emit(ev.DriverStopped(reason, forget, self._clock()))
