"""The line a workload prints on stdout once it is ready (e.g. a stream app that joined its group
and restored its state); the executor watches the sandbox's stdout for it."""

READY_MARKER = "kmf: ready"
