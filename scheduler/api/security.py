"""The API's security views and commands: TLS/SASL endpoints, SASL/SCRAM users.

Users live in Kafka, not in kmf: `create_user` sends the password to the brokers once
(AdminClient ``alter_user_scram_credentials``; Kafka keeps only the salted SCRAM credentials) and
kmf never stores, logs or returns it. The AdminClient goes over the brokers' PLAINTEXT listener,
the one that needs no SCRAM user: kmf then has no Kafka credential of its own to keep or to lose,
and the brokers replicate over it (or over TLS) the same way.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping

from scheduler.api.topics import admin_client
from scheduler.core.pods import desired_pods
from scheduler.core.state import State
from scheduler.core.taskinfo import listener_ports

TIMEOUT_S = 15.0
USER_NAME = re.compile(r"^[A-Za-z0-9._@-]{1,128}$")
MIN_PASSWORD, MAX_PASSWORD = 8, 1024
ITERATIONS = 8192  # SCRAM's salted-hash rounds: Kafka accepts 4096..16384


def endpoint_extras(state: State, ca_cert: str | None) -> dict[str, Any]:
    """The TLS and SASL parts of ``GET /v1/endpoints/broker`` (empty when neither is on)."""
    k = state.spec.kafka
    tls, sasl = [], []
    for pod in desired_pods(state.spec):
        rec = state.tasks.get(pod.name)
        if pod.kind != "broker" or "broker" not in pod.roles or rec is None or rec.reservation is None:
            continue
        ports = listener_ports(pod, rec.reservation)
        host = rec.reservation.hostname
        if "tls" in ports:
            tls.append(f"{host}:{ports['tls']}")
        if "sasl" in ports:
            sasl.append(f"{host}:{ports['sasl']}")
    out: dict[str, Any] = {}
    if k.tls.enabled:
        out["tls"] = {"security_protocol": "SSL", "bootstrap_servers": ",".join(tls), "address": tls,
                      "ca_cert": ca_cert, "inter_broker": k.tls.inter_broker}
    if k.sasl.enabled:
        out["sasl"] = {"security_protocol": "SASL_SSL" if k.tls.enabled else "SASL_PLAINTEXT",
                       "mechanism": k.sasl.mechanism, "bootstrap_servers": ",".join(sasl), "address": sasl}
        if k.tls.enabled:
            out["sasl"]["ca_cert"] = ca_cert
    return out


def parse_user(doc: Mapping[str, Any]) -> tuple[str, str]:
    """(name, password) of a ``POST /v1/users`` body; ValueError names the field (never the
    password's value)."""
    unknown = set(doc) - {"name", "password"}
    if unknown:
        raise ValueError(f"unknown fields: {', '.join(sorted(unknown))}")
    name, password = doc.get("name"), doc.get("password")
    check_name(name)
    if not isinstance(password, str) or not MIN_PASSWORD <= len(password) <= MAX_PASSWORD:
        raise ValueError(f"password: must be a string of {MIN_PASSWORD} to {MAX_PASSWORD} characters")
    return name, password  # type: ignore[return-value]


def check_name(name: Any) -> str:
    if not isinstance(name, str) or not USER_NAME.match(name):
        raise ValueError(f"name: {name!r} must be 1 to 128 letters, digits or . _ @ -")
    return name


def _mechanism(name: str) -> Any:
    from confluent_kafka.admin import ScramMechanism
    return {"SCRAM-SHA-256": ScramMechanism.SCRAM_SHA_256, "SCRAM-SHA-512": ScramMechanism.SCRAM_SHA_512}[name]


def _error(exc: Exception) -> tuple[int, dict[str, Any]]:
    err = exc.args[0] if exc.args else None
    code = err.name() if err is not None and hasattr(err, "name") else ""
    status = {"RESOURCE_NOT_FOUND": 404, "UNSUPPORTED_SASL_MECHANISM": 400,
              "UNACCEPTABLE_CREDENTIAL": 400}.get(code, 502)
    text = err.str() if err is not None and hasattr(err, "str") else str(exc)
    return status, {"error": text, "code": code}


def create_user(bootstrap: str, mechanism: str, name: str, password: str,
                admin: Callable[[str], Any] = admin_client) -> tuple[int, dict[str, Any]]:
    """Create the user, or set a new password for an existing one."""
    from confluent_kafka.admin import ScramCredentialInfo, UserScramCredentialUpsertion
    change = UserScramCredentialUpsertion(name, ScramCredentialInfo(_mechanism(mechanism), ITERATIONS),
                                          password.encode("utf-8"))
    client = admin(bootstrap)  # held until the answer: a dropped client cancels its requests
    try:
        client.alter_user_scram_credentials([change], request_timeout=TIMEOUT_S)[name].result()
    except Exception as exc:  # noqa: BLE001 - KafkaException: answer with Kafka's reason
        return _error(exc)
    return 200, {"name": name, "mechanism": mechanism, "message": f"user {name!r} can authenticate"}


def list_users(bootstrap: str, admin: Callable[[str], Any] = admin_client) -> tuple[int, Any]:
    client = admin(bootstrap)
    try:
        found = client.describe_user_scram_credentials(request_timeout=TIMEOUT_S).result()
    except Exception as exc:  # noqa: BLE001
        return _error(exc)
    return 200, [{"name": user, "mechanisms": sorted(str(info.mechanism).rsplit(".", 1)[-1].replace("_", "-")
                                                     for info in desc.scram_credential_infos)}
                 for user, desc in sorted(found.items())]


def delete_user(bootstrap: str, mechanism: str, name: str,
                admin: Callable[[str], Any] = admin_client) -> tuple[int, dict[str, Any]]:
    from confluent_kafka.admin import UserScramCredentialDeletion
    change = UserScramCredentialDeletion(name, _mechanism(mechanism))
    client = admin(bootstrap)
    try:
        client.alter_user_scram_credentials([change], request_timeout=TIMEOUT_S)[name].result()
    except Exception as exc:  # noqa: BLE001
        return _error(exc)
    return 200, {"name": name, "message": f"user {name!r} deleted"}
