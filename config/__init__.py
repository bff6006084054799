"""Service specification: attrs models of the YAML, loading and validation."""
