"""A harness around localmesos' pure master core (MasterCore): agents, frameworks and ACCEPTs
driven directly, effects collected for inspection; plus TaskInfo and LAUNCH builders."""
from __future__ import annotations

import base64
import os

from localmesos.master import accept as accept_ops
from localmesos.master import agents_core
from localmesos.master.core import MasterCore
from localmesos.master.model import Send
from mesoslib.resources import parse_resources_flag

RES = "cpus:4;mem:4096;disk:20000;ports:[31000-32000]"


class Harness:
    def __init__(self):
        self.core = MasterCore("M", {"id": "M", "hostname": "h", "port": 1}, now=0.0)
        self.now = 1.0
        self.effects = []

    def run(self, fn, *args):
        result = fn(*args)
        self.effects.extend(self.core.drain())
        return result

    def add_agent(self, ip="127.0.0.2", resources=RES, agent_id=None, tasks=()):
        info = {"hostname": ip, "port": 5051,
                "resources": parse_resources_flag(resources).to_json("endpoint"),
                "attributes": [{"name": "zone", "type": "TEXT", "text": {"value": "a"}}]}
        if agent_id:
            info["id"] = {"value": agent_id}
        body = {"agent_info": info, "agent_url": f"http://{ip}:5051", "tasks": list(tasks)}
        return self.run(agents_core.register_agent, self.core, body, self.now)

    def subscribe(self, stream="s1", **info):
        fi = {"user": "u", "name": "n", "failover_timeout": 60.0, **info}
        self.run(self.core.subscribe, {"type": "SUBSCRIBE", "subscribe": {"framework_info": fi}},
                 stream, None, self.now)
        return next(f for f in self.core.frameworks.values() if f.stream_id == stream)

    def events(self, kind=None, stream=None):
        out = [e.event for e in self.effects if isinstance(e, Send)
               and (stream is None or e.stream_id == stream)]
        return [e for e in out if kind is None or e["type"] == kind]

    def offers(self, stream="s1"):
        return [o for e in self.events("OFFERS", stream) for o in e["offers"]["offers"]]

    def updates(self, stream="s1"):
        return [e["update"]["status"] for e in self.events("UPDATE", stream)]

    def allocate(self):
        self.run(self.core.allocate, self.now)

    def clear(self):
        self.effects = []

    def accept(self, fw, offer_ids, ops, filters=None):
        body = {"offer_ids": [{"value": o} for o in offer_ids], "operations": ops}
        if filters is not None:
            body["filters"] = filters
        self.run(accept_ops.accept, self.core, fw, body, self.now)


def task(tid, agent_id, resources="cpus:1;mem:128", **extra):
    info = {"name": tid, "task_id": {"value": tid}, "agent_id": {"value": agent_id},
            "resources": parse_resources_flag(resources).to_json("pre"),
            "command": {"value": "true"}}
    info.update(extra)
    return info


def launch(*tasks):
    return {"type": "LAUNCH", "launch": {"task_infos": list(tasks)}}


def uuid_b64():
    return base64.b64encode(os.urandom(16)).decode()
