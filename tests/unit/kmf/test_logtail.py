"""`kmf pod logs --tail`: where the last N lines start, read backwards through a reader that answers
less than asked (as Mesos' /files/read answers at most 16 pages)."""
from __future__ import annotations

from hypothesis import given, settings
from hypothesis import strategies as st

from kmf.logtail import as_bytes, read_exact, tail_offset


def reader(data: bytes, page: int):
    calls = []

    def read(offset: int, length: int) -> bytes:
        calls.append((offset, length))
        return data[offset:offset + min(length, page)]
    return read, calls


def expected_tail(data: bytes, n: int) -> bytes:
    lines = data.splitlines(keepends=True)
    return b"".join(lines[-n:]) if n > 0 else b""


@settings(max_examples=300, deadline=None)
@given(data=st.lists(st.sampled_from([b"a", b"bc", b"\n", b"\xc3\xa9"]), max_size=60).map(b"".join),
       n=st.integers(0, 12), chunk=st.integers(1, 9), page=st.integers(1, 7))
def test_tail_is_the_last_n_lines_whatever_the_chunk_and_page(data, n, chunk, page):
    read, _ = reader(data, page)
    start = tail_offset(len(data), read, n, chunk)
    assert data[start:] == expected_tail(data, n)


def test_tail_reads_back_only_as_far_as_needed():
    data = b"".join(b"line %d\n" % i for i in range(10000))
    read, calls = reader(data, 4096)
    start = tail_offset(len(data), read, 20, chunk=65536)
    assert data[start:].splitlines() == [b"line %d" % i for i in range(9980, 10000)]
    assert min(o for o, _ in calls) >= len(data) - 65536  # one chunk from the end, not the whole file


def test_a_last_line_without_newline_counts_and_fewer_lines_give_the_start():
    read, _ = reader(b"x\ny\nz", 3)
    assert tail_offset(5, read, 1, 2) == 4
    assert tail_offset(5, read, 2, 2) == 2
    assert tail_offset(5, read, 9, 2) == 0
    assert tail_offset(0, read, 3) == 0


def test_read_exact_gathers_short_reads_and_stops_at_the_end():
    read, calls = reader(b"0123456789", 3)
    assert read_exact(read, 2, 6) == b"234567" and len(calls) == 2
    assert read_exact(read, 8, 10) == b"89"


def test_offsets_count_bytes_of_the_text():
    assert len(as_bytes("é\n")) == 3
