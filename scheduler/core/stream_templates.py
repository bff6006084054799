"""Launch payloads and fingerprints of stream instances from a template per shape (the offer
round's hot path: one app's instances differ only in their index and the bootstrap list).

The payload and the fingerprint of the instances of one stream app differ only in
`stream.instance` and `stream.bootstrap_servers` (the fingerprint: in the instance only). Their
JSON text is made once per shape (every other field of the TaskData; for the fingerprint also
the pod's resources and the executor identity) by the plain code with markers in those places,
and filled in per launch: the text is the plain code's by construction. A shape whose values
cannot be keyed exactly, or whose text holds a marker more than once, takes the plain path.
"""
from __future__ import annotations

import base64
from json.encoder import encode_basestring_ascii
from operator import attrgetter
from typing import Any, Callable

import attrs

from kmfwire.taskdata import StreamTask, TaskData
from scheduler.core.pods import PodDef

_VARYING = ("instance", "bootstrap_servers")
_DATA_VALUES = attrgetter(*(f.name for f in attrs.fields(TaskData) if f.name not in ("broker", "stream")))
_STREAM_VALUES = attrgetter(*(f.name for f in attrs.fields(StreamTask) if f.name not in _VARYING))
_MARK_INSTANCE = -918273645546372819
_MARK_BOOT = "\x01kmf-bootstrap-marker\x01"
_TEMPLATES_MAX = 512


class _NoKey(Exception):
    """A value the template key cannot represent exactly (the plain path is taken)."""


def _key_of(value: Any) -> Any:
    """`value` as a hashable key that tells apart what JSON tells apart (1, 1.0, True, -0.0, 0.0)."""
    t = type(value)
    if t is str:
        return value
    if value is None or t is int or t is bool:
        return (t, value)
    if t is float:
        return (t, repr(value))
    if t is tuple or t is list:
        return (t, _keys_of(value))
    if t is dict:
        return (t, tuple([(k if type(k) is str else _atom(k), v if type(v) is str else _atom(v))
                          for k, v in value.items()]))
    raise _NoKey(t)


def _keys_of(values: Any) -> tuple[Any, ...]:
    """The keys of a sequence's items (strings, the usual ones, without a call)."""
    return tuple([v if type(v) is str else _atom(v) for v in values])


def _atom(value: Any) -> Any:
    """`_key_of`, with the common leaves (strings, numbers) done without a further call."""
    t = type(value)
    if t is str:
        return value
    if t is float:
        return (t, repr(value))
    if value is None or t is int or t is bool:
        return (t, value)
    return _key_of(value)


_last_shape: list[Any] = [None, None]  # the last TaskData keyed and its key (task_info, then fingerprint)


def _shape(data: TaskData) -> Any:
    """The key of a stream payload's shape, or None (not a plain stream payload)."""
    if _last_shape[0] is data:
        return _last_shape[1]
    key = None
    stream = data.stream
    if type(data) is TaskData and type(stream) is StreamTask and data.broker is None \
            and type(stream.instance) is int and type(stream.bootstrap_servers) is str:
        try:
            key = (_keys_of(_DATA_VALUES(data)), _keys_of(_STREAM_VALUES(stream)))
        except _NoKey:
            key = None
    _last_shape[0], _last_shape[1] = data, key
    return key


@attrs.frozen
class _Template:
    """JSON text cut at its markers: `pieces[0] + value[order[0]] + pieces[1] + ...`."""

    pieces: tuple[str, ...]
    order: tuple[int, ...]  # which filled value goes into each cut

    @classmethod
    def cut(cls, text: str, marks: tuple[str, ...]) -> "_Template | None":
        if any(text.count(m) != 1 for m in marks):
            return None
        at = sorted((text.index(m), i) for i, m in enumerate(marks))
        pieces, start = [], 0
        for pos, i in at:
            pieces.append(text[start:pos])
            start = pos + len(marks[i])
        pieces.append(text[start:])
        return cls(tuple(pieces), tuple(i for _, i in at))

    def fill(self, *values: Any) -> str:
        texts = [str(values[0])] + [encode_basestring_ascii(v) for v in values[1:]]
        out = [self.pieces[0]]
        for piece, i in zip(self.pieces[1:], self.order):
            out.append(texts[i])
            out.append(piece)
        return "".join(out)


_payloads: dict[Any, _Template | None] = {}
_fingerprints: dict[Any, _Template | None] = {}


def _marked(data: TaskData) -> TaskData:
    assert data.stream is not None
    return attrs.evolve(data, stream=attrs.evolve(data.stream, instance=_MARK_INSTANCE,
                                                  bootstrap_servers=_MARK_BOOT))


def _remember(cache: dict[Any, _Template | None], key: Any, make: Callable[[], _Template | None]) -> _Template | None:
    try:
        return cache[key]
    except KeyError:
        pass
    if len(cache) >= _TEMPLATES_MAX:
        cache.clear()
    template = cache[key] = make()
    return template


def payload_template(data: TaskData) -> _Template | None:
    """The payload template of `data`'s shape, or None: take the plain path."""
    shape = _shape(data)
    if shape is None:
        return None
    return _remember(_payloads, shape, lambda: _Template.cut(
        base64.b64decode(_marked(data).encode()).decode(),
        (str(_MARK_INSTANCE), encode_basestring_ascii(_MARK_BOOT))))


def fingerprint_template(pod: PodDef, data: TaskData, executor: str,
                         text_of: Callable[[PodDef, TaskData, str], str]) -> _Template | None:
    """The fingerprint template of the shape, made from `text_of` (the plain fingerprint text), or None."""
    shape = _shape(data)
    if shape is None or type(executor) is not str:
        return None
    try:
        key = (shape, _key_of((pod.cpus, pod.mem_mb, pod.disk_mb)), executor)
    except _NoKey:
        return None
    return _remember(_fingerprints, key, lambda: _Template.cut(
        text_of(pod, _marked(data), executor), (str(_MARK_INSTANCE),)))
