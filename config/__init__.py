"""kmf's service spec: models, YAML loading with line-numbered errors, rules, update checks."""
from __future__ import annotations

import hashlib
import json
from pathlib import Path
from typing import Any, Mapping

import cattrs

from config.loading import ConfigError, Problem, build, line_of
from config.models import (
    ApiSpec,
    AppSpec,
    AppUri,
    AutoscaleSpec,
    Constraint,
    ExecutorSpec,
    KafkaSpec,
    MesosSpec,
    Policies,
    RebalanceSpec,
    SaslSpec,
    ServiceSpec,
    TlsSpec,
    ZooKeeperSpec,
)
from config.rules import MAX_INSTANCES, broker_restart_required, check_update, describe_update, live_broker_settings

__all__ = [
    "MAX_INSTANCES", "ApiSpec", "AppSpec", "AppUri", "AutoscaleSpec", "ConfigError", "Constraint", "ExecutorSpec", "KafkaSpec", "MesosSpec",
    "Policies", "Problem", "RebalanceSpec", "SaslSpec", "ServiceSpec", "TlsSpec", "ZooKeeperSpec",
    "broker_restart_required", "check_update",
    "config_id", "describe_update", "live_broker_settings", "load_file", "load_text",
    "spec_from_json", "spec_to_json",
]

_converter = cattrs.Converter()


def known_versions() -> dict[str, tuple[str, ...]] | None:
    """The pinned Kafka versions and the modes each supports, read once by the shell (None: no file)."""
    try:
        from kmfwire.kafka_versions import read_versions, supported_modes
        versions = read_versions()
    except (OSError, ValueError):  # no versions file: skip the rule rather than guess
        return None
    out = {}
    for v in versions.all:
        out[v] = tuple(sorted(m.value for m in supported_modes(v)))
    return out


def load_text(text: str | bytes, source: str = "<string>", env: Mapping[str, str] | None = None,
              check_files: bool = False) -> ServiceSpec:
    """Parse, structure and validate; raise `ConfigError` listing every problem with its line."""
    spec = build(text, source, env)
    issues = rules_validate(spec, check_files)
    if issues:
        raise ConfigError([Problem(source, line_of(text, source, path), path, message)
                           for path, message in issues])
    return spec


def rules_validate(spec: ServiceSpec, check_files: bool = False) -> list[tuple[str, str]]:
    from config.rules import validate
    return validate(spec, check_files, known_versions())


def load_file(path: str | Path, env: Mapping[str, str] | None = None,
              check_files: bool = False) -> ServiceSpec:
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise ConfigError([Problem(str(p), None, "", f"cannot read the file: {exc.strerror}")]) from None
    return load_text(data, str(p), env, check_files)


def spec_to_json(spec: ServiceSpec) -> dict[str, Any]:
    doc: dict[str, Any] = json.loads(json.dumps(_converter.unstructure(spec)))
    return doc


def spec_from_json(doc: Mapping[str, Any]) -> ServiceSpec:
    try:
        return _converter.structure(dict(doc), ServiceSpec)
    except Exception as exc:  # noqa: BLE001 - cattrs raises several kinds
        raise ConfigError([Problem("<stored config>", None, "", f"cannot be read back: {exc}")]) from None


def config_id(spec: ServiceSpec) -> str:
    raw = json.dumps(spec_to_json(spec), sort_keys=True, separators=(",", ":")).encode()
    return hashlib.sha256(raw).hexdigest()[:12]
