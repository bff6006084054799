"""What a kmf executor fetches into its sandbox: the kmf bundle and a Kafka archive (pure).

The URIs come from the service config (``executor.artifacts: urls``) or from the scheduler itself
(``served``: the shell finds the archives, hashes them and gives their URLs on its API as a
`Served` value, which lives in the `State` and never changes while the scheduler runs).

An artifact's `digest` is what the rolling fingerprint takes: the content's sha256 when served,
the URI when it is the user's. Not the URL: a restarted scheduler or another instance taking the
lead serves the same bundle at another address, which is not a change of the executor.
"""
from __future__ import annotations

from typing import Any, Mapping

import attrs

from config import ServiceSpec
from kmfwire.artifacts import KAFKA_FOLDER, archive_folder
from scheduler.core.pods import PodDef
from scheduler.core.state import PodKind


@attrs.frozen
class Artifact:
    uri: str
    folder: str  # where it is unpacked in the sandbox
    digest: str


@attrs.frozen
class Served:
    """The archives this scheduler serves on its API."""

    bundle: Artifact | None = None
    kafka: Mapping[str, Artifact] = attrs.field(factory=dict)


def needs_kafka(spec: ServiceSpec, pod: PodDef) -> bool:
    """Brokers run Kafka; a Java stream app runs on the Kafka runtime's jars (Kafka Streams)."""
    if pod.kind == PodKind.BROKER:
        return True
    app = spec.app(pod.app or "")
    return app is not None and app.runtime == "java"


def for_pod(spec: ServiceSpec, pod: PodDef, served: Served | None) -> tuple[Artifact | None, Artifact | None]:
    """The pod's kmf bundle and Kafka archive (None for what it does not fetch: everything with
    ``preinstalled``, or when nothing is served, as in the pure core's tests)."""
    e = spec.executor
    version = spec.kafka.version
    if e.artifacts == "urls":
        bundle = Artifact(e.bundle_uri, archive_folder(e.bundle_uri), e.bundle_uri) if e.bundle_uri else None
        uri = e.kafka_uris.get(version)
        kafka = Artifact(uri, KAFKA_FOLDER, uri) if uri else None
    elif e.artifacts == "served" and served is not None:
        bundle, kafka = served.bundle, served.kafka.get(version)
    else:
        return None, None
    return bundle, (kafka if needs_kafka(spec, pod) else None)


def identity(spec: ServiceSpec, pod: PodDef, served: Served | None) -> str:
    """What of the executor's artifacts the fingerprint takes ("" when nothing is fetched)."""
    return "+".join(a.digest for a in for_pod(spec, pod, served) if a is not None)


def app_uris(pod: PodDef) -> list[dict[str, Any]]:
    """The app's own artifacts as ``CommandInfo.URI``s of its executor (kmf's executor runs the
    app, so the fetcher must put them in the executor's sandbox, not a task command's)."""
    return [{"value": u.value, "extract": u.extract, "executable": u.executable, "cache": u.cache}
            for u in pod.uris]
