"""mesoslib.resources: exact Mesos resource arithmetic, JSON formats and agent flag syntax."""
from __future__ import annotations

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from mesoslib import resources as R
from mesoslib.resources import (
    DYNAMIC,
    STATIC,
    Reservation,
    Resource,
    ResourceError,
    Resources,
)


def test_scalars_are_fixed_point_without_float_drift():
    total = Resources()
    for _ in range(10):
        total = total + R.scalar("cpus", 0.1)
    assert total.scalar("cpus") == 1.0
    assert (total - R.scalar("cpus", 0.3)).scalar("cpus") == 0.7


def test_ranges_coalesce_and_subtract_as_mesos_shows_them():
    ports = Resources([R.ranges("ports", [(31000, 31005), (31006, 31010), (31020, 32000)])])
    assert ports.ranges_of("ports") == ((31000, 31010), (31020, 32000))
    left = Resources([R.ranges("ports", [(31000, 32000)])]) - R.ranges("ports", [(31000, 31000)])
    assert left.to_map()["ports"] == "[31001-32000]"
    assert ports.contains(R.ranges("ports", [(31002, 31009)]))
    assert not ports.contains(R.ranges("ports", [(31009, 31021)]))


def test_subtraction_saturates_and_contains_tells_whether_it_would():
    bag = Resources([R.scalar("cpus", 1)])
    assert not bag.contains(R.scalar("cpus", 2))
    assert (bag - R.scalar("cpus", 2)).scalar("cpus") == 0.0
    assert not (bag - R.scalar("cpus", 2))


def test_reserved_resources_are_another_kind_than_unreserved():
    bag = Resources([R.scalar("cpus", 4), R.scalar("cpus", 1, "kafka", "kmf")])
    assert bag.scalar("cpus") == 5.0
    assert bag.reserved("kafka").scalar("cpus") == 1.0
    assert bag.unreserved().scalar("cpus") == 4.0
    assert not bag.contains(R.scalar("cpus", 2, "kafka", "kmf"))
    assert bag.allocatable_to("other").scalar("cpus") == 4.0
    assert bag.allocatable_to("kafka").scalar("cpus") == 5.0
    assert bag.allocatable_to("kafka/sub").scalar("cpus") == 5.0


def test_pre_post_and_endpoint_formats_of_a_dynamic_reservation():
    res = R.scalar("mem", 512, "kafka", "kmf")
    assert res.to_json("pre") == {
        "name": "mem", "type": "SCALAR", "scalar": {"value": 512.0},
        "role": "kafka", "reservation": {"principal": "kmf"},
    }
    assert res.to_json("post")["reservations"] == [
        {"type": "DYNAMIC", "role": "kafka", "principal": "kmf"}
    ]
    assert "role" not in res.to_json("post")
    endpoint = res.to_json("endpoint")
    assert endpoint["role"] == "kafka" and endpoint["reservations"][0]["role"] == "kafka"
    assert R.scalar("cpus", 1).to_json("pre")["role"] == "*"
    assert "role" not in R.scalar("cpus", 1).to_json("post")


def test_volume_json_round_trip_and_identity():
    data = {
        "name": "disk", "type": "SCALAR", "scalar": {"value": 2048},
        "role": "kafka", "reservation": {"principal": "kmf"},
        "disk": {"persistence": {"id": "broker-0", "principal": "kmf"},
                 "volume": {"mode": "RW", "container_path": "data"}},
    }
    vol = Resource.from_json(data)
    assert vol.is_volume and vol.role == "kafka"
    assert vol.to_json("pre") == {**data, "scalar": {"value": 2048.0}}
    plain = vol.without_volume()
    bag = Resources([vol])
    assert not bag.contains(plain)
    assert bag.contains(vol)
    # a volume is taken whole or not at all
    half = vol.with_value(vol.value // 2)
    assert not bag.contains(half)
    assert (bag - half) == bag


def test_refined_reservation_has_no_pre_refinement_format():
    res = Resource("cpus", "SCALAR", 1000, (Reservation(DYNAMIC, "eng", "p"), Reservation(DYNAMIC, "eng/be")))
    with pytest.raises(ResourceError, match="refined"):
        res.to_json("pre")
    assert Resource.from_json(res.to_json("post")) == res


def test_allocation_info_round_trip():
    res = R.scalar("cpus", 1).with_allocation("a")
    out = res.to_json("pre")
    assert out["allocation_info"] == {"role": "a"}
    assert Resource.from_json(out) == res


def test_resource_map_of_the_state_endpoints():
    bag = R.parse_resources_flag("cpus:4;mem:4096;ports:[31000-31005,31010-32000];cpus(kafka):2")
    assert bag.to_map() == {
        "cpus": 6.0, "gpus": 0.0, "mem": 4096.0, "disk": 0.0,
        "ports": "[31000-31005, 31010-32000]",
    }


def test_resources_flag_syntax():
    bag = R.parse_resources_flag("cpus:4;mem:4096;disk:20000;ports:[31000-32000];cpus(kafka):2")
    assert bag.unreserved().scalar("cpus") == 4.0
    static = bag.reserved("kafka")
    assert [r.reservations for r in static] == [(Reservation(STATIC, "kafka"),)]
    assert static.to_json("pre")[0]["role"] == "kafka"
    assert "reservation" not in static.to_json("pre")[0]
    assert bag.ranges_of("ports") == ((31000, 32000),)
    sets = R.parse_resources_flag("disks:{a, b}")
    assert list(sets)[0].value == frozenset({"a", "b"})


def test_resources_flag_as_json_array():
    text = '[{"name":"cpus","type":"SCALAR","scalar":{"value":2}}]'
    assert R.parse_resources_flag(text).scalar("cpus") == 2.0


@pytest.mark.parametrize(
    "text, fragment",
    [
        ("cpus", "name:value"),
        ("cpus:x", "not a number"),
        ("ports:[5-1]", "begin > end"),
        ("ports:[a-b]", "not begin-end"),
        ("cpus(/bad):1", "cannot start or end"),
        ("cpus:-1", "negative"),
    ],
)
def test_bad_resources_flag_names_the_problem(text, fragment):
    with pytest.raises(ResourceError, match="--resources") as info:
        R.parse_resources_flag(text)
    assert fragment in str(info.value)


def test_attributes_flag_types():
    attrs = R.parse_attributes_flag("zone:a;rack:r1;weight:2;ids:[1-3]")
    assert [a.to_json() for a in attrs] == [
        {"name": "zone", "type": "TEXT", "text": {"value": "a"}},
        {"name": "rack", "type": "TEXT", "text": {"value": "r1"}},
        {"name": "weight", "type": "SCALAR", "scalar": {"value": 2.0}},
        {"name": "ids", "type": "RANGES", "ranges": {"range": [{"begin": 1, "end": 3}]}},
    ]
    assert R.attributes_to_map(attrs) == {"zone": "a", "rack": "r1", "weight": 2, "ids": "[1-3]"}
    again = R.attributes_from_json(R.attributes_to_json(attrs))
    assert again == attrs
    assert R.parse_attributes_flag('[{"name":"zone","type":"TEXT","text":{"value":"b"}}]')[0].value == "b"
    with pytest.raises(ResourceError, match="--attributes"):
        R.parse_attributes_flag("zone")


def test_bad_json_resource_says_where():
    with pytest.raises(ResourceError, match=r"offer\[1\] \(cpus\)"):
        Resources.from_json([{"name": "mem", "type": "SCALAR", "scalar": {"value": 1}},
                             {"name": "cpus", "type": "SCALAR"}], "offer")
    with pytest.raises(ResourceError, match="type"):
        Resource.from_json({"name": "cpus", "type": "TEXT"})


def test_role_validation():
    assert R.validate_role("kafka") is None
    assert R.validate_role("eng/be") is None
    for bad in ("/a", "a/", "a//b", "a/./b", "a b", "-a", "a/*"):
        assert R.validate_role(bad), bad


# --------------------------------------------------------------------------- properties

ROLES = st.sampled_from(["*", "kafka", "eng"])


@st.composite
def resource(draw):
    kind = draw(st.sampled_from(["cpus", "mem", "ports", "set"]))
    role = draw(ROLES)
    principal = draw(st.sampled_from([None, "kmf"])) if role != "*" else None
    if kind == "ports":
        spans = draw(st.lists(st.tuples(st.integers(0, 200), st.integers(0, 20)), max_size=4))
        return R.ranges("ports", [(b, b + n) for b, n in spans], role, principal)
    if kind == "set":
        return R.set_resource("sets", draw(st.sets(st.sampled_from("abcde"))), role)
    return R.scalar(kind, draw(st.integers(0, 10_000)) / 1000, role, principal)


bags = st.lists(resource(), max_size=6).map(Resources)


@settings(max_examples=200, deadline=None)
@given(bags, bags)
def test_adding_then_subtracting_gives_back_the_original(a, b):
    # Ranges and sets are idempotent under union, so a+b-b == a holds when b does not overlap a.
    assert (a + b).contains(a) and (a + b).contains(b)
    if not any(r.type in ("RANGES", "SET") for r in b):
        assert (a + b) - b == a


@settings(max_examples=200, deadline=None)
@given(bags, bags)
def test_subtraction_never_goes_negative(a, b):
    for res in a - b:
        if res.type == "SCALAR":
            assert res.value > 0
        else:
            assert res.value
    assert a.contains(a - b)


@settings(max_examples=200, deadline=None)
@given(bags, bags)
def test_contains_matches_subtraction(a, b):
    if a.contains(b):
        assert (a - b) + b == a
    else:
        assert (a - b) + b != a


@settings(max_examples=200, deadline=None)
@given(st.lists(st.tuples(st.integers(0, 1000), st.integers(0, 50)), max_size=8))
def test_ranges_are_coalesced(spans):
    merged = R.coalesce((b, b + n) for b, n in spans)
    for (b1, e1), (b2, e2) in zip(merged, merged[1:]):
        assert e1 + 1 < b2
    numbers = {x for b, n in spans for x in range(b, b + n + 1)}
    assert {x for b, e in merged for x in range(b, e + 1)} == numbers


@settings(max_examples=200, deadline=None)
@given(bags, st.sampled_from(["pre", "post", "endpoint"]))
def test_json_round_trip(bag, fmt):
    assert Resources.from_json(bag.to_json(fmt)) == bag


@settings(max_examples=100, deadline=None)
@given(bags)
def test_flag_round_trip_of_static_resources(bag):
    static = Resources(
        r for r in bag if all(x.type == STATIC for x in r.reservations) and r.type != "SET"
    )
    text = ";".join(
        f"{r.name}{'(' + r.role + ')' if r.is_reserved else ''}:{r.value_text()}" for r in static
    )
    assert R.parse_resources_flag(text) == static


def test_reserve_and_unreserve_whole_bags():
    bag = R.parse_resources_flag("cpus:1;mem:512")
    reserved = bag.reserve("kafka", "kmf", [("k", "v")])
    assert all(r.to_json("pre")["reservation"] == {"principal": "kmf", "labels": {"labels": [{"key": "k", "value": "v"}]}}
               for r in reserved)
    assert reserved.reserved("kafka") == reserved
    assert reserved.unreserve() == bag
