"""Delivery: the tracker's queue, worker, overflow policy, outbox and process lifecycle."""
