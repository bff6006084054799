"""The demo's word-count check is exact (issue 12, defect 9): doubled counts, like any count above
the expected one or a word never sent, fail it; counts still below are only "not yet"."""
from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from kmf.demo import compare_counts

EXPECTED = {"kafka": 2, "mesos": 2, "the": 3}


def test_exact_counts_pass():
    check = compare_counts(dict(EXPECTED), EXPECTED)
    assert check.exact and not check.short and not check.wrong


def test_doubled_counts_fail():
    check = compare_counts({w: 2 * c for w, c in EXPECTED.items()}, EXPECTED)
    assert not check.exact
    assert dict(check.wrong) == {"kafka": (4, 2), "mesos": (4, 2), "the": (6, 3)}


def test_one_word_counted_once_too_often_fails_even_if_others_are_short():
    check = compare_counts({"kafka": 3, "mesos": 1}, EXPECTED)
    assert dict(check.wrong) == {"kafka": (3, 2)}
    assert dict(check.short) == {"mesos": (1, 2), "the": (0, 3)}


def test_a_word_that_was_never_sent_fails():
    check = compare_counts({**EXPECTED, "zookeeper": 1}, EXPECTED)
    assert not check.exact and dict(check.wrong) == {"zookeeper": (1, 0)}


def test_counts_still_below_are_short_not_wrong():
    check = compare_counts({"kafka": 1}, EXPECTED)
    assert not check.exact and not check.wrong
    assert dict(check.short) == {"kafka": (1, 2), "mesos": (0, 2), "the": (0, 3)}


@given(st.dictionaries(st.sampled_from(["kafka", "mesos", "the", "extra"]), st.integers(0, 8)))
def test_exact_means_equal(counted):
    counted = {w: n for w, n in counted.items() if n}  # a word never counted has no record
    assert compare_counts(counted, EXPECTED).exact == (counted == EXPECTED)
