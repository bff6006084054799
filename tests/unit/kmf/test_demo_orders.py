"""The demo's order stage's pure parts: the orders it sends, the totals it expects, how it reads
the pipeline's windowed totals back, and the alert service's rule."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from kmf import demo_orders as orders
from streams.order_alerts import alert


def test_the_orders_are_the_same_every_run_and_expected_totals_add_up():
    sent = orders.orders(500)
    assert sent == orders.orders(500) and len({oid for oid, _, _ in sent}) == 500
    table = orders.customers()
    want = orders.expected_totals(table, sent)
    assert set(want) == set(orders.REGIONS)
    assert sum(n for n, _ in want.values()) == 500 and sum(c for _, c in want.values()) == sum(c for *_, c in sent)


@settings(max_examples=50, deadline=None)
@given(st.lists(st.tuples(st.sampled_from(orders.REGIONS), st.integers(0, 5), st.lists(st.integers(1, 1000), min_size=1,
                                                                                       max_size=5)), max_size=20))
def test_region_totals_add_the_latest_total_of_each_window(windows):
    seen: dict[str, list[str]] = {}
    want: dict[str, list[int]] = {}
    for region, start, amounts in windows:
        key = f"{region}@{start * 10_000}"
        if key in seen:
            continue
        # each update of a window replaces the one before: only the last counts
        seen[key] = [f"{i + 1},{sum(amounts[:i + 1])}" for i in range(len(amounts))]
        t = want.setdefault(region, [0, 0])
        t[0] += len(amounts)
        t[1] += sum(amounts)
    assert orders.region_totals(seen) == {r: (n, c) for r, (n, c) in want.items()}


def test_an_alert_is_raised_for_a_large_order_only_and_a_malformed_one_is_an_error():
    assert alert(b"emea,o1,50000", 50_000) == (b"o1", b"emea,50000")
    assert alert(b"emea,o2,49999", 50_000) is None
    with pytest.raises(ValueError):
        alert(b"emea,o3", 50_000)
