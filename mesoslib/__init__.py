"""Mesos vocabulary shared by the scheduler, the executor and localmesos (no I/O)."""
