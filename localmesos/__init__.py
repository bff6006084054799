"""A local Mesos: master and agents speaking the Mesos v1 scheduler and executor HTTP APIs."""
