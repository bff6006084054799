"""kafka_watch.merge_views: the brokers' answers merged so that no stale one makes Kafka look safer.

The case found by chaos (cut_broker_during_roll): broker 1 is cut from the other brokers and the
controllers but still answers clients with its last metadata, where everything is in sync. The
others have fenced it and shrunk the ISRs. Asked alone, it made the roll's gate think a second
broker could stop.
"""
from __future__ import annotations

from hypothesis import given, strategies as st

from scheduler.shell.kafka_watch import MetadataView, PartitionView, TopicView, health_from_metadata, merge_views

LAYOUT = [(0, 1, 2), (1, 2, 0), (2, 0, 1)]


def view(answered_by: int, brokers: set[int], isrs: list[set[int]]) -> MetadataView:
    parts = {i: PartitionView(replicas, tuple(b for b in replicas if b in isr))
             for i, (replicas, isr) in enumerate(zip(LAYOUT, isrs))}
    return MetadataView({"t": TopicView(parts)}, frozenset(brokers), 0, answered_by)


def test_a_cut_brokers_stale_answer_does_not_hide_that_it_is_out():
    stale = view(1, {0, 1, 2}, [{0, 1, 2}] * 3)  # broker 1's own, from before the cut
    fresh = [view(b, {0, 2}, [{0, 2}] * 3) for b in (0, 2)]  # the others fenced it
    alone = health_from_metadata(stale, 2, 0.0)
    merged = health_from_metadata(merge_views([stale, *fresh]), 2, 0.0)
    # what broker 1 said alone: broker 0 may stop (every partition keeps 2 in sync)
    assert alone.under_min_isr_if_down.get(0, 0) == 0 and alone.under_replicated == 0
    # merged: broker 1 is not in the cluster, and stopping 0 or 2 would leave partitions at 1
    assert merged.brokers_in_metadata == {0, 2} and merged.under_replicated == 3
    assert merged.under_min_isr_if_down[0] == 3 and merged.under_min_isr_if_down[2] == 3
    assert merged.answered_by == 0  # replicas and the controller come from a broker every view lists


def test_one_answer_is_taken_as_it_is():
    only = view(2, {0, 1, 2}, [{0, 1}, {1, 2}, {2, 0}])
    assert merge_views([only]) == only


isr_sets = st.lists(st.sets(st.integers(0, 2), min_size=1), min_size=3, max_size=3)
views = st.lists(st.tuples(st.integers(0, 2), st.sets(st.integers(0, 2), min_size=1), isr_sets),
                 min_size=1, max_size=4)


@given(views)
def test_the_merge_is_never_more_hopeful_than_any_answer(raw):
    vs = [view(b, brokers, isrs) for b, brokers, isrs in raw]
    merged = merge_views(vs)
    assert all(merged.brokers <= v.brokers for v in vs)
    for pid, p in merged.topics["t"].partitions.items():
        assert p.replicas == LAYOUT[pid]
        assert all(set(p.isrs) <= set(v.topics["t"].partitions[pid].isrs) for v in vs)
    # fewer in sync anywhere shows as more under-replicated partitions, which hold rolls back
    health = health_from_metadata(merged, 2, 0.0)
    assert all(health.under_replicated >= health_from_metadata(v, 2, 0.0).under_replicated for v in vs)
