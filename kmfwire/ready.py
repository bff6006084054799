"""The line a workload prints on stdout once it is ready (e.g. a stream app that joined its group
and restored its state); the executor watches the sandbox's stdout for it. An app that says its
state (kmfwire.app_state) is judged by that instead; the marker is for the others."""

READY_MARKER = "kmf: ready"
