"""kmf: the Kafka Mesos Framework (command-line entry point and version)."""

__version__ = "0.1.0"
