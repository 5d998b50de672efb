"""Capture: decorators, with-blocks, usage extraction and budget guards turn calls into events."""
