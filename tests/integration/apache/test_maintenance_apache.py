"""Issue 16 on Apache Mesos: the same maintenance window as on localmesos, against the real
`/master/maintenance/schedule`, `/master/machine/down|up` and `/master/maintenance/status`
(tests/helpers/maintenance_scenario.py). Skipped, saying why, without an Apache Mesos install."""
from __future__ import annotations

import pytest

from tests.helpers import maintenance_scenario

pytestmark = [pytest.mark.timeout(1200), pytest.mark.kafka]


def test_a_maintenance_window_on_apache_mesos(kmf_env):
    figures = maintenance_scenario.run(kmf_env(agents=3, engine="apache"))
    print("maintenance on Apache Mesos:", {k: round(v, 1) for k, v in figures.items()})


def test_a_machine_drained_for_good_on_apache_mesos_moves_the_broker(kmf_env):
    figures = maintenance_scenario.run_move(kmf_env(agents=4, engine="apache"))
    print("maintenance (move) on Apache Mesos:", {k: round(v, 1) for k, v in figures.items()})
