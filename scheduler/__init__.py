"""The kmf Mesos scheduler: a pure decision core (core/) and a thin I/O shell (shell/)."""
