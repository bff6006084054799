"""kmfwire: the pure contract shared by scheduler, executor and localmesos.

A leaf package: it imports nothing of kmf's other packages, and no network, process, thread or
Mesos/ZooKeeper/Kafka client library (import-linter checks both, see setup.cfg). It holds:

- `taskdata`: what the scheduler tells the executor about a task (``TaskInfo.data``), with the
  one `Voter` (a KRaft controller quorum member);
- `cluster_id`: Kafka cluster ids (the scheduler makes them, the executor formats storage with them);
- `kafka_versions`: the pinned Kafka versions and the modes each one runs in;
- `artifacts`: the names of what agents fetch (the kmf bundle, the Kafka archives);
- `task_states`: Mesos task states, terminal and "ended";
- `ready`: the line a workload prints once it is ready;
- `errors`: `KmfError`, the base of every kmf error.
"""

# The version of the whole tree (kmf, scheduler, executor, ...): setup.cfg's [metadata] version
# and the kmf bundle's file name carry the same value.
__version__ = "0.1.0"
