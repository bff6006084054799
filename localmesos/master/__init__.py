"""The localmesos master: pure core (core, accept, agents_core, allocator, validation, views) and
its I/O shell (server, links, detector, main)."""
