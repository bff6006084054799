"""`KmfError`, the base of every error kmf raises, and the errors the wire contract shares.

Each area keeps its own subclass (`ConfigError`, `TaskDataError`, `StoreError`, ...), usually also
derived from the built-in it always was (``class TaskDataError(KmfError, ValueError)``), so that
existing ``except ValueError`` handlers still catch it, while ``except KmfError`` catches any of them.
"""
from __future__ import annotations


class KmfError(Exception):
    """Any error of kmf's own; the message says what is wrong and where."""


class BrokerConfigError(KmfError, ValueError):
    """A broker setting kmf cannot use or render (a voter, a cluster id, a server.properties value);
    the message names the field and the value."""
