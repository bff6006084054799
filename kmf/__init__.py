"""kmf: the Kafka Mesos Framework (command-line entry point and version)."""

from kmfwire import __version__

__all__ = ["__version__"]
