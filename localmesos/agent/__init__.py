"""The localmesos agent: `python -m localmesos agent` (see localmesos.agent.main)."""
