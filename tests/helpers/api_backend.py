"""The API's backend for tests: the scheduler's state from the core's scenario kit (every pod
ready, Kafka healthy); operator commands go through `decide` and are recorded."""
from __future__ import annotations

from scheduler.api.server import Api
from scheduler.core import actions as act
from scheduler.core import events as ev
from tests.helpers.core_kit import deployed


class Backend:
    """The scheduler's state from the pure core's cluster simulation; commands are recorded."""

    def __init__(self) -> None:
        self.sim = deployed()
        self.submitted: list = []

    def role(self): return "leader"
    def leader_url(self): return None
    def state(self): return self.sim.state
    def zk_connected(self): return True
    def mesos_master(self): return "127.0.0.9:5050"
    def configurations(self): return {}
    def declared_status(self): return {"state": "nothing declared"}

    def parse_config(self, text):
        import config
        return config.load_text(text, "PUT", env={})

    def submit(self, kind, args) -> act.Reply:
        self.submitted.append((kind, args))
        return self.sim.send.event(ev.Command("c", kind, args, self.sim.now)).reply


def api(token=None) -> Api:
    from prometheus_client import CollectorRegistry
    return Api(Backend(), CollectorRegistry(), token)


def call(a, method, path, body=b"", headers=None):
    status, ctype, data, extra = a.handle(method, path, headers or {}, body)
    return status, data
