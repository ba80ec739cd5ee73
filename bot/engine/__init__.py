"""The conversation engine: flows on shared `transitions` machines, conditions and actions."""
