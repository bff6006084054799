"""The pure part of the word count: splitting lines and keeping counts per partition.

No Kafka here: `streams.wordcount` feeds records in and writes what these functions return.
"""
from __future__ import annotations

import re
from typing import Iterable

_SPLIT = re.compile(r"\W+")


def words(line: str) -> list[str]:
    """The words of `line`, lower-cased, split on anything that is not a word character
    (the rule of Kafka's own WordCountDemo)."""
    return [word for word in _SPLIT.split(line.lower()) if word]


def encode_count(count: int) -> bytes:
    """A count as the output topic holds it: decimal text."""
    return str(count).encode()


def decode_count(raw: bytes | None, where: str = "count") -> int:
    """Parse a value written by `encode_count`; a bad value names `where` it came from."""
    if raw is None:
        raise ValueError(f"{where}: empty value, expected a decimal count")
    try:
        value = int(raw.decode("ascii"))
    except (UnicodeDecodeError, ValueError):
        raise ValueError(f"{where}: {raw[:40]!r} is not a decimal count") from None
    if value < 0:
        raise ValueError(f"{where}: negative count {value}")
    return value


class PartitionCounts:
    """Counts of the words routed to one partition of the repartition topic.

    `count` works out new totals without changing anything (the transaction may still abort);
    `apply` keeps them once the transaction has committed.
    """

    def __init__(self, initial: dict[str, int] | None = None) -> None:
        self.counts: dict[str, int] = dict(initial or {})

    def count(self, batch: Iterable[str], pending: dict[str, int] | None = None) -> dict[str, int]:
        """New totals of the words in `batch`, on top of `pending` (earlier uncommitted totals)."""
        updates: dict[str, int] = dict(pending or {})
        for word in batch:
            updates[word] = updates.get(word, self.counts.get(word, 0)) + 1
        return updates

    def apply(self, updates: dict[str, int]) -> None:
        self.counts.update(updates)

    def __len__(self) -> int:
        return len(self.counts)
