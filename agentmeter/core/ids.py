"""Event ids, made once at an event's birth and never remade.

Ids are UUIDv7 (RFC 9562): 48 bits of Unix milliseconds, then 74 random
bits. They sort by time, which keeps the ledger's primary-key index
appending, and the random part makes a collision across processes as
unlikely as with UUIDv4. ``os.urandom`` is used because it needs no seeding
and stays correct across ``fork()``.
"""

from __future__ import annotations

import os
import time
import uuid

_VERSION_7 = 0x7 << 76
_VARIANT_RFC = 0x2 << 62
_RAND_A_MASK = (1 << 12) - 1
_RAND_B_MASK = (1 << 62) - 1


def new_event_id() -> str:
    """Return a new UUIDv7 as text, e.g. ``0193f6a2-5c1e-7b3d-9f21-3c5d7e9a1b2c``."""
    millis = time.time_ns() // 1_000_000
    rand = int.from_bytes(os.urandom(10), "big")
    value = (
        (millis & 0xFFFF_FFFF_FFFF) << 80
        | _VERSION_7
        | ((rand >> 62) & _RAND_A_MASK) << 64
        | _VARIANT_RFC
        | (rand & _RAND_B_MASK)
    )
    text = f"{value:032x}"
    return f"{text[:8]}-{text[8:12]}-{text[12:16]}-{text[16:20]}-{text[20:]}"


def derived_event_id(namespace: str, key: str) -> str:
    """A stable id for an event that may be reported twice (e.g. a LangChain run).

    The same ``(namespace, key)`` always gives the same id, so the ledger's
    deduplication stores it once.
    """
    return str(uuid.uuid5(uuid.NAMESPACE_URL, f"agentmeter:{namespace}:{key}"))
