"""Kafka cluster ids: the scheduler makes one per KRaft cluster, the executor formats storage with it.

Kafka's ``Uuid`` text form: URL-safe base64 of 16 bytes without padding, 22 characters.
"""
from __future__ import annotations

import base64
import random
import re
import uuid

from kmfwire.errors import BrokerConfigError

_CLUSTER_ID_RE = re.compile(r"^[A-Za-z0-9_\-]{22}$")
_RESERVED_IDS = frozenset({0, 1})  # Kafka's Uuid.ZERO_UUID and METADATA_TOPIC_ID (0, 1)


def cluster_id_from_int(value: int) -> str:
    """The Kafka Uuid string of a 128-bit value: URL-safe base64 of its 16 bytes, no padding."""
    if not 0 <= value < 1 << 128:
        raise BrokerConfigError(f"cluster id value {value} is not a 128-bit unsigned number")
    return base64.urlsafe_b64encode(value.to_bytes(16, "big")).decode("ascii").rstrip("=")


def new_cluster_id(rng: random.Random | None = None) -> str:
    """A fresh KRaft cluster id as `kafka-storage random-uuid` makes one: a random (version 4) UUID
    in Kafka's Uuid format, 22 characters, never starting with '-' and never a reserved id."""
    rng = rng or random.SystemRandom()
    while True:
        value = uuid.UUID(int=rng.getrandbits(128), version=4).int
        text = cluster_id_from_int(value)
        if value not in _RESERVED_IDS and not text.startswith("-"):
            return text


def check_cluster_id(text: str) -> str:
    """Return `text` if Kafka accepts it as a cluster id (Uuid.fromString), else BrokerConfigError."""
    if not _CLUSTER_ID_RE.match(text):
        raise BrokerConfigError(f"cluster id {text!r} is not 22 URL-safe base64 characters")
    raw = base64.urlsafe_b64decode(text + "==")
    if cluster_id_from_int(int.from_bytes(raw, "big")) != text:
        raise BrokerConfigError(f"cluster id {text!r} does not decode to exactly 16 bytes")
    return text
