"""Base layer helpers: ids, field types, JSON, input checks, wire queries, hot-path event dicts."""
