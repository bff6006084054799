"""The scheduler's pure decision core: data in, decisions out, time passed in (DESIGN.md §3)."""
