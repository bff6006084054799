"""kmf's speed and memory figures (printed and written to docs/benchmarks.md, never asserted)."""
