"""Issue 16 on localmesos: a Mesos maintenance window on a broker's agent is handled with no
partition below min.insync.replicas and the broker back in place after the window
(tests/helpers/maintenance_scenario.py says how)."""
from __future__ import annotations

import pytest

from tests.helpers import maintenance_scenario

pytestmark = [pytest.mark.timeout(900), pytest.mark.kafka]


def test_a_maintenance_window_stops_the_broker_gracefully_and_brings_it_back_in_place(kmf_env):
    figures = maintenance_scenario.run(kmf_env(agents=3))
    print("maintenance on localmesos:", {k: round(v, 1) for k, v in figures.items()})


def test_a_machine_drained_for_good_moves_the_broker_with_its_id(kmf_env):
    figures = maintenance_scenario.run_move(kmf_env(agents=4))
    print("maintenance (move) on localmesos:", {k: round(v, 1) for k, v in figures.items()})
