"""The scheduler's HTTP API, Prometheus metrics and web page."""
