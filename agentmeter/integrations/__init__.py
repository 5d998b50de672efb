"""Integrations with agent frameworks (each needs its extra)."""
