"""A scenario kit for the decision core (`scheduler.core.decide.decide`), in the spirit of
dcos-commons' Send/Expect simulation: a scenario sends events, `decide` runs, and the test states
what it expects of the step's actions and the state after.

    sim = deployed()                                  # every pod ready, Kafka healthy
    sim.send.command("restart_pod", pod="broker-0").replied(ok=True).killed("broker-0")
    sim.send.status("broker-0", "TASK_KILLED")
    sim.send.offers().launched("broker-0")
    sim.expect.plan_status("deploy", "IN_PROGRESS")

* `Scenario` (runner.py): state, clock ``now``, a simulated `Cluster` (cluster.py) that applies
  ACCEPTs exactly, and ``send``: ``subscribed``, ``offers``/``offer``, ``rescinded``, ``status``
  (a pod or task id), ``update`` (a raw status), ``tick``, ``command``, ``agent_lost``,
  ``kafka_health``/``kafka_healthy``, ``disconnected``, ``event``. Every send returns the step's
  `Outcome`; ``sim.expect`` is the last one, ``sim.history(since)`` several as one.
* `Outcome` (outcome.py, worded by describe.py): the actions as a tuple, queries (``launches``, ``kills``, ``reply``,
  ``operations(...)``, ...) and expectations (``launched``, ``nothing_launched``, ``killed``,
  ``nothing_killed``, ``reserved``, ``released``, ``declined``, ``declined_all``, ``accepted``,
  ``each_offer_answered_once``, ``suppressed``, ``revived``, ``torn_down``, ``persisted``,
  ``acknowledged``, ``only_acknowledged``, ``replied``, ``reconciled``, ``plan_status``,
  ``step_status``) that fail showing every action of the step.
* The write-ahead rule (write_ahead.py, stated there) is checked on every step: an ACCEPT that
  launches, reserves or releases never runs ahead of the Persist of the records it depends on, an
  acknowledgement never ahead of the Persist of its status, and the new state holds nothing the
  store does not.
"""
from tests.helpers.core_kit.cluster import Agent, Cluster
from tests.helpers.core_kit.describe import describe, pod_of
from tests.helpers.core_kit.outcome import Outcome
from tests.helpers.core_kit.runner import BASE, CLUSTER_ID, ONE_BROKER, Scenario, Send, deployed, spec, subscribed
from tests.helpers.core_kit.write_ahead import StoreModel, WriteAheadViolation

__all__ = ["Agent", "BASE", "CLUSTER_ID", "ONE_BROKER", "Cluster", "Outcome", "Scenario", "Send", "StoreModel",
           "WriteAheadViolation", "deployed", "describe", "pod_of", "spec", "subscribed"]
