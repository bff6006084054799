"""The pure parts of `kmf pod logs`: where the last N lines of a file start, read backwards in
chunks through a `read(offset, length) -> bytes` that may answer less than asked (Mesos'
`/files/read` answers at most 16 pages), and one poll of a follower."""
from __future__ import annotations

from typing import Callable

CHUNK = 16 * 4096  # what one Mesos /files/read answers at most

Reader = Callable[[int, int], bytes]  # (offset, length) -> at most length bytes from offset ("" at the end)


def read_exact(read: Reader, offset: int, length: int) -> bytes:
    """`length` bytes from `offset` (fewer only at the end of the file), however little each read answers."""
    parts: list[bytes] = []
    while length > 0:
        got = read(offset, length)
        if not got:
            break
        parts.append(got)
        offset += len(got)
        length -= len(got)
    return b"".join(parts)


def tail_offset(size: int, read: Reader, lines: int, chunk: int = CHUNK) -> int:
    """The offset where the file's last `lines` lines start (0 when it has fewer; `size` for 0 lines).
    A last line without its newline counts as a line; the file's final newline does not start one."""
    if lines <= 0 or size <= 0:
        return max(size, 0) if lines <= 0 else 0
    needed = lines
    end = size
    first = True
    while end > 0:
        start = max(0, end - chunk)
        data = read_exact(read, start, end - start)
        stop = len(data)
        if first and data.endswith(b"\n"):
            stop -= 1  # the final newline ends the last line
        first = False
        while True:
            at = data.rfind(b"\n", 0, stop)
            if at < 0:
                break
            needed -= 1
            if needed == 0:
                return start + at + 1
            stop = at
        end = start
    return 0


def as_bytes(data: str) -> bytes:
    """A /files/read `data` string as the file's bytes (offsets count bytes, not characters)."""
    return data.encode("utf-8", "surrogateescape")
