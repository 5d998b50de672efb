"""Event ids from a per-process random part and a counter (issue 19: the hot path).

An id is still UUIDv7 text that reads back as itself; ids never repeat within
a process, across its threads, or between a parent and its forked child.
"""

from __future__ import annotations

import multiprocessing
import re
import threading
import time
import uuid

import pytest

from agentmeter.core import ids
from agentmeter.core.ids import new_event_id

UUID7 = re.compile(r"^[0-9a-f]{8}-[0-9a-f]{4}-7[0-9a-f]{3}-[89ab][0-9a-f]{3}-[0-9a-f]{12}$")


def test_an_id_is_uuid7_text_that_reads_back_as_itself():
    for _ in range(2000):
        event_id = new_event_id()
        parsed = uuid.UUID(event_id)
        assert UUID7.match(event_id)
        assert (parsed.version, parsed.variant) == (7, uuid.RFC_4122)
        assert str(parsed) == event_id


def test_a_given_clock_reading_is_the_ids_millisecond():
    now = time.time_ns()
    assert uuid.UUID(new_event_id(now)).int >> 80 == now // 1_000_000
    assert uuid.UUID(new_event_id(1_000_000 * 0xFFFF_FFFF_FFFF)).int >> 80 == 0xFFFF_FFFF_FFFF


def test_ids_of_one_millisecond_are_distinct_until_the_counter_wraps():
    now = time.time_ns()
    made = [new_event_id(now) for _ in range((1 << 20) + 1)]
    assert len(set(made[: 1 << 20])) == 1 << 20
    # Only 2**20 ids later does one come back, which needs that many ids
    # within one millisecond: no clock allows it.
    assert made[1 << 20] == made[0]


def test_ids_from_many_threads_never_repeat():
    made: list[list[str]] = [[] for _ in range(8)]

    def mint(into: list[str]) -> None:
        into.extend(new_event_id() for _ in range(20_000))

    threads = [threading.Thread(target=mint, args=(into,)) for into in made]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    every = [event_id for into in made for event_id in into]
    assert len(set(every)) == len(every) == 160_000


def test_the_random_part_is_drawn_again_when_the_clock_goes_back():
    now = time.time_ns()
    before = [new_event_id(now) for _ in range(1000)]
    part = ids._random_part
    new_event_id(now + 10**9)  # a second later ...
    assert ids._random_part is part
    after = [new_event_id(now) for _ in range(1000)]  # ... and the clock is set back
    assert ids._random_part is not part
    assert not set(before) & set(after)
    assert {event_id[-12:] for event_id in before} != {event_id[-12:] for event_id in after}


def _child_ids(queue: multiprocessing.Queue[list[str]]) -> None:
    queue.put([new_event_id() for _ in range(1000)])


@pytest.mark.skipif(
    "fork" not in multiprocessing.get_all_start_methods(), reason="no fork on this system"
)
def test_a_forked_child_never_mints_its_parents_ids():
    new_event_id()  # the parent's part and counter are in use before the fork
    context = multiprocessing.get_context("fork")
    queue: multiprocessing.Queue[list[str]] = context.Queue()
    child = context.Process(target=_child_ids, args=(queue,))
    child.start()
    from_child = queue.get(timeout=30)
    child.join(timeout=30)
    from_parent = [new_event_id() for _ in range(1000)]
    assert not set(from_child) & set(from_parent)
    assert {event_id[-12:] for event_id in from_child}.isdisjoint(
        {event_id[-12:] for event_id in from_parent}
    )
