"""GET /v1/declared: the reconciliation state (a standby's backend says it is one, scheduler/main.py);
PUT /v1/config's confirm_delete reaches the core, and must be true or false."""
from __future__ import annotations

import json

from tests.helpers.api_backend import api, call


def test_the_backends_reconciliation_state_is_answered():
    status, data = call(api(), "GET", "/v1/declared")
    assert status == 200 and json.loads(data) == {"state": "nothing declared"}


def test_put_config_passes_confirm_delete_and_refuses_a_non_boolean():
    a = api()
    status, _ = call(a, "PUT", "/v1/config", json.dumps({"yaml": "x", "confirm_delete": "yes"}).encode())
    assert status == 400
    yaml_text = ("name: kafka\nmesos: {master: 'zk://127.0.0.1:2181/mesos'}\n"
                 "zookeeper: {connect: '127.0.0.1:2181'}\n")
    call(a, "PUT", "/v1/config", json.dumps({"yaml": yaml_text, "confirm_delete": True}).encode())
    kind, args = a.backend.submitted[-1]
    assert kind == "update_config" and args["confirm_delete"] is True and args["confirm"] is False
