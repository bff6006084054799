"""The integer fast paths of mesoslib.resources and scheduler.core.offers give what the plain
code gave (issue 14 item 6). The plain versions are kept here as they were before (commit
47554f5) and compared on generated bags: same values, same JSON text, same error messages."""
from __future__ import annotations

import json

import attrs
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslib.resources import (
    DYNAMIC,
    STATIC,
    DiskInfo,
    Reservation,
    Resource,
    ResourceError,
    Resources,
    ranges,
    scalar,
    to_millis,
)
from scheduler.core.offers import choose_ports, shortfall, take_unreserved

pytestmark = pytest.mark.timeout(120)

# ------------------------------------------------------------------------------ plain versions


def old_to_millis(value) -> int:
    try:
        number = float(value)
    except (TypeError, ValueError):
        raise ResourceError(f"scalar: {value!r} is not a number") from None
    if number != number or number in (float("inf"), float("-inf")):
        raise ResourceError(f"scalar: {value!r} is not a finite number")
    return int(round(number * 1000))


def old_add(a: Resources, b: Resources) -> Resources:
    return Resources(list(a._items.values()) + list(b))


def old_sub(a: Resources, b: Resources) -> Resources:
    items = dict(a._items)
    for res in b:
        have = items.get(res.key)
        if have is None:
            continue
        if have.is_volume and not have.covers(res):
            continue
        left = attrs.evolve(have, value=have.minus(res).value)
        if left.is_empty:
            del items[res.key]
        else:
            items[res.key] = left
    return Resources(items.values())


def old_take_unreserved(pool: Resources, role: str, cpus, mem, disk, ports):
    free = Resources(r for r in pool if not r.is_reserved or (r.role == role and not r.is_dynamically_reserved))
    reason = shortfall(free, cpus, mem, disk, ports)
    if reason is not None:
        return reason
    chosen = choose_ports(free, ports) or []
    wanted = [scalar("cpus", cpus), scalar("mem", mem)]
    if disk > 0:
        wanted.append(scalar("disk", disk))
    if chosen:
        wanted.append(ranges("ports", [(p, p) for p in chosen]))
    taken = Resources()
    for want in wanted:
        for res in sorted((r for r in free if r.name == want.name), key=lambda r: r.is_reserved):
            candidate = attrs.evolve(want, reservations=res.reservations)
            if Resources([res]).contains(candidate):
                taken = taken + candidate
                break
        else:
            return f"needs {want}, not available in one piece"
    return taken, chosen


# ------------------------------------------------------------------------------ generated bags

ROLES = st.sampled_from(["*", "kafka", "other"])
reservations = st.one_of(
    st.just(()),
    st.builds(lambda role: (Reservation(STATIC, role),), st.sampled_from(["kafka", "other"])),
    st.builds(lambda role, pod: (Reservation(DYNAMIC, role, "kmf", (("kmf.pod", pod),)),),
              st.sampled_from(["kafka", "other"]), st.sampled_from(["a", "b"])),
)
scalars = st.builds(lambda name, millis, res, vol: Resource(
    name, "SCALAR", millis, res, DiskInfo("v1", container_path="d", mode="RW") if vol and name == "disk" and res else None),
    st.sampled_from(["cpus", "mem", "disk", "gpus"]), st.integers(0, 20000), reservations, st.booleans())
port_spans = st.lists(st.tuples(st.integers(30000, 30100), st.integers(0, 20)), min_size=1, max_size=4).map(
    lambda pairs: [(b, b + n) for b, n in pairs])
port_items = st.builds(lambda spans, res: ranges("ports", spans).push_reservation(res[0]) if res
                       else ranges("ports", spans), port_spans, reservations)
bags = st.lists(st.one_of(scalars, port_items), max_size=8).map(Resources)
amounts = st.one_of(st.integers(0, 9), st.floats(0, 9, allow_nan=False).map(lambda f: round(f, 3)))


def _same(new, old) -> None:
    if isinstance(old, str):
        assert new == old
        return
    assert new[1] == old[1]
    assert new[0] == old[0]
    assert json.dumps(new[0].to_json("pre")) == json.dumps(old[0].to_json("pre"))


@settings(max_examples=300, deadline=None)
@given(bags, ROLES, amounts, amounts, amounts, st.integers(-1, 8))
def test_take_unreserved_is_the_plain_one(pool, role, cpus, mem, disk, ports):
    _same(take_unreserved(pool, role, cpus, mem, disk, ports), old_take_unreserved(pool, role, cpus, mem, disk, ports))


@settings(max_examples=300, deadline=None)
@given(bags, bags)
def test_bag_arithmetic_is_the_plain_one(a, b):
    for new, old in ((a + b, old_add(a, b)), (a - b, old_sub(a, b)), (a - b, old_sub(a, b))):
        assert new == old
        assert list(new) == list(old)  # the canonical order, carried over or sorted
        assert [r.order for r in new] == [r.order for r in old]
        assert json.dumps(new.to_json("pre")) == json.dumps(old.to_json("pre"))
        assert json.dumps(new.to_json("endpoint")) == json.dumps(old.to_json("endpoint"))
        assert new.to_map() == old.to_map()
    assert (a - b) is (a - b)  # remembered
    assert a.filter(lambda r: r.name == "cpus") == Resources(r for r in a if r.name == "cpus")
    assert a.without_allocation() == a


@settings(max_examples=300, deadline=None)
@given(bags)
def test_json_round_trip_takes_the_quick_path_to_the_same_resources(bag):
    doc = bag.to_json("pre")
    parsed = Resources.from_json(doc)
    assert parsed == bag and list(parsed) == list(bag)
    assert [r.key for r in parsed] == [r.key for r in bag]
    assert json.dumps(parsed.to_json("pre")) == json.dumps(doc)
    for item, res in zip(doc, bag):
        assert Resource.from_json(item) == res


@pytest.mark.parametrize("doc", [
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": -1}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": "nan"}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {}}],
    [{"name": "", "type": "SCALAR", "scalar": {"value": 1}}],
    [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": 5, "end": 2}]}}],
    [{"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": "x", "end": 2}]}}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "role": 5}],
    [{"name": "cpus", "type": "SCALAR", "scalar": {"value": 1}, "reservations": "no"}],
    [{"name": "cpus", "type": "FOO"}],
])
def test_bad_items_are_refused_with_the_same_words(doc):
    with pytest.raises(ResourceError) as exc:
        Resources.from_json(doc, "offer.resources")
    assert str(exc.value).startswith("offer.resources[0]")


def test_odd_items_still_parse_as_before():
    doc = [{"name": "cpus", "type": "SCALAR", "scalar": {"value": True}},
           {"name": "ports", "type": "RANGES", "ranges": {"range": [{"begin": "7", "end": 9.0}]}},
           {"name": "ports", "type": "RANGES", "ranges": {}},
           {"name": "mem", "type": "SCALAR", "scalar": {"value": 5}, "role": "*", "shared": {}},
           {"name": "disk", "type": "SCALAR", "scalar": {"value": 5}, "disk": None}]
    bag = Resources.from_json(doc)
    assert bag.scalar("cpus") == 1.0 and bag.ranges_of("ports") == ((7, 9),)
    assert any(r.shared for r in bag) and bag.scalar("disk") == 5.0


@pytest.mark.parametrize("value", [0, 1, -3, 7, 2**43 - 1, 2**43, -(2**43), 10**20, 0.1, 1.0005, -2.5, "3.25", True,
                                   1e300])
def test_to_millis_is_the_plain_one(value):
    assert to_millis(value) == old_to_millis(value)
    assert type(to_millis(value)) is int


@pytest.mark.parametrize("value", [float("nan"), float("inf"), "x", None, -float("inf")])
def test_to_millis_refuses_the_same(value):
    with pytest.raises(ResourceError) as new:
        to_millis(value)
    with pytest.raises(ResourceError) as old:
        old_to_millis(value)
    assert str(new.value) == str(old.value)
