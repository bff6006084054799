"""What a scheduler's launch file means at start-up when the service exists (scheduler.core.
launch_config): a standby's own API listener settings are not a request to change the service."""
from __future__ import annotations

import attrs

import config
from config.models import ApiSpec
from scheduler.core import launch_config
from tests.helpers.core_kit import spec


def _start(stored, launch, last_launch_id):
    return launch_config.start(stored, config.config_id(stored), launch, launch_config.launch_id(launch),
                               last_launch_id)


def test_a_standby_launch_file_differing_only_in_its_api_listener_is_not_an_update():
    leader = attrs.evolve(spec(), api=ApiSpec(port=31500, bind="127.0.0.1"))
    standby = attrs.evolve(leader, api=ApiSpec(port=31777, bind="127.0.0.2", token_file="/sandbox/token"))
    # the service was scaled since the leader started: the stored target differs from both files
    scaled = attrs.evolve(leader, apps=tuple(attrs.evolve(a, count=3) for a in leader.apps))
    begin = _start(scaled, standby, launch_config.launch_id(leader))
    assert not begin.update and not begin.seed
    assert begin.spec == scaled and begin.config_id == config.config_id(scaled)


def test_a_launch_file_asking_the_service_for_something_new_is_an_update():
    leader = spec()
    bigger = attrs.evolve(leader, kafka=attrs.evolve(leader.kafka, heap_mb=300),
                          api=ApiSpec(port=31777))
    assert _start(leader, bigger, launch_config.launch_id(leader)).update


def test_a_launch_file_equal_to_the_target_but_for_its_api_is_not_an_update():
    target = spec()
    assert not _start(target, attrs.evolve(target, api=ApiSpec(port=1234)), None).update


def test_a_new_service_is_seeded_with_the_full_config_id():
    launch = attrs.evolve(spec(), api=ApiSpec(port=31500))
    begin = launch_config.start(None, None, launch, launch_config.launch_id(launch), None)
    assert begin.seed and begin.config_id == config.config_id(launch)
