"""A short-lived process that tracks events, for test_processes.py.

    python _tracking_child.py '<json settings>'

Modes:
- ``stream``: track instant charges one after another (up to ``count``),
  printing each returned id (flushed) as soon as the call returns; the test
  kills it with SIGKILL part-way.
- ``exit``: track ``count`` events, print their ids, and return normally:
  atexit closes the tracker (a bounded flush, then the outbox).
- ``deliver``: open a tracker on the same outbox, flush, print the result.
"""

from __future__ import annotations

import json
import logging
import sys

from agentmeter import AgentMeterClient, AgentMeterTracker


def main() -> None:
    settings = json.loads(sys.argv[1])
    logging.basicConfig(level=logging.ERROR, stream=sys.stderr)
    client = AgentMeterClient(
        api_key=settings["key"],
        base_url=settings["url"],
        project_id=settings["project_id"],
        retry_attempts=2,
        retry_deadline=1.0,
        max_retry_wait=0.2,
        connect_timeout=1.0,
        timeout=10.0,
    )
    tracker = AgentMeterTracker(client, agent_id="child", **settings["tracker"])
    mode = settings["mode"]
    if mode in ("stream", "exit"):
        for _ in range(settings["count"]):
            event_id = tracker.track_instant_pay(settings["amount"], user_id=settings["user"])
            sys.stdout.write(event_id + "\n")
            sys.stdout.flush()
        return  # "exit": the tracker is closed by atexit
    if mode == "deliver":
        delivered = tracker.flush(timeout=settings.get("timeout", 60))
        stats = tracker.stats()
        tracker.close(timeout=5)
        print(json.dumps({"delivered": delivered, "outbox_pending": stats.outbox_pending}))
        return
    raise SystemExit(f"unknown mode {mode!r}")


if __name__ == "__main__":
    main()
