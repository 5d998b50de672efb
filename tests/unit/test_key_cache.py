"""The server's cache of verified keys: how long a key revoked elsewhere keeps working."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import delete

from agentmeter.errors import AgentMeterConfigurationError
from agentmeter.ledger import Ledger, hash_key
from agentmeter.ledger.api import ADMIN, Principal
from agentmeter.ledger.schema import api_keys
from agentmeter.server.http import KeyChecker
from agentmeter.server.key_cache import (
    DEFAULT_KEY_CACHE_SECONDS,
    KEY_CACHE_ENV,
    KeyCache,
    configured_key_cache_seconds,
)

ALICE = Principal("project", "proj_a")


class Clock:
    """A monotonic clock the test moves."""

    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


def test_a_key_is_remembered_for_exactly_its_ttl() -> None:
    clock = Clock()
    cache = KeyCache(5.0, clock=clock)
    cache.put("digest", ALICE, clock())
    clock.now += 4.999
    assert cache.get("digest") == ALICE
    clock.now += 0.001
    assert cache.get("digest") is None
    assert len(cache) == 0  # an expired entry is dropped when seen


def test_the_ttl_counts_from_before_the_lookup() -> None:
    clock = Clock()
    cache = KeyCache(5.0, clock=clock)
    looked_up_at = clock()
    clock.now += 2.0  # a slow lookup
    cache.put("digest", ALICE, looked_up_at)
    clock.now += 3.0
    assert cache.get("digest") is None


def test_ttl_zero_remembers_nothing() -> None:
    cache = KeyCache(0)
    cache.put("digest", ALICE, 0.0)
    assert cache.get("digest") is None
    assert len(cache) == 0


def test_forgetting_a_project_drops_only_its_keys() -> None:
    clock = Clock()
    cache = KeyCache(5.0, clock=clock)
    cache.put("a1", ALICE, clock())
    cache.put("a2", ALICE, clock())
    cache.put("b", Principal("project", "proj_b"), clock())
    cache.put("admin", ADMIN, clock())
    cache.forget_project("proj_a")
    assert (cache.get("a1"), cache.get("a2")) == (None, None)
    assert cache.get("b") == Principal("project", "proj_b")
    assert cache.get("admin") == ADMIN


def test_the_cache_holds_at_most_max_keys_oldest_out_first() -> None:
    clock = Clock()
    cache = KeyCache(5.0, clock=clock, max_keys=2)
    for digest in ("first", "second", "third"):
        cache.put(digest, ALICE, clock())
    assert len(cache) == 2
    assert cache.get("first") is None
    assert cache.get("third") == ALICE


@pytest.mark.parametrize("ttl", [-1.0, float("nan"), float("inf")])
def test_a_bad_ttl_is_refused(ttl: float) -> None:
    with pytest.raises(ValueError, match="ttl"):
        KeyCache(ttl)


def test_the_ttl_comes_from_the_environment() -> None:
    assert configured_key_cache_seconds({}) == DEFAULT_KEY_CACHE_SECONDS
    assert configured_key_cache_seconds({KEY_CACHE_ENV: " 0.5 "}) == 0.5
    assert configured_key_cache_seconds({KEY_CACHE_ENV: "0"}) == 0.0
    for bad in ("soon", "-1", "nan", "inf"):
        with pytest.raises(AgentMeterConfigurationError, match=KEY_CACHE_ENV):
            configured_key_cache_seconds({KEY_CACHE_ENV: bad})


# ------------------------------------------------ the checker over a real ledger


@pytest.fixture
def ledger(tmp_path: Path) -> Iterator[Ledger]:
    opened = Ledger.open(f"sqlite:///{tmp_path / 'ledger.db'}")
    yield opened
    opened.close()


def _revoke_elsewhere(ledger: Ledger, key: str) -> None:
    """Delete a key as another process on the same database would: no cache told."""
    with ledger.writing() as connection:
        connection.execute(delete(api_keys).where(api_keys.c.key_hash == hash_key(key)))


def test_a_key_revoked_elsewhere_stops_working_within_the_bound(ledger: Ledger) -> None:
    _, key = ledger.create_project("p", None, "proj_a")
    clock = Clock()
    checker = KeyChecker(ledger, None, KeyCache(5.0, clock=clock))
    assert asyncio.run(checker.principal_of(hash_key(key))) == ALICE
    _revoke_elsewhere(ledger, key)
    clock.now += 4.9
    assert asyncio.run(checker.principal_of(hash_key(key))) == ALICE  # still within the bound
    clock.now += 0.1
    assert asyncio.run(checker.principal_of(hash_key(key))) is None


def test_without_a_cache_a_revocation_takes_effect_at_once(ledger: Ledger) -> None:
    _, key = ledger.create_project("p", None, "proj_a")
    checker = KeyChecker(ledger, None, KeyCache(0))
    assert asyncio.run(checker.principal_of(hash_key(key))) == ALICE
    _revoke_elsewhere(ledger, key)
    assert asyncio.run(checker.principal_of(hash_key(key))) is None


def test_an_unknown_key_is_not_remembered(ledger: Ledger) -> None:
    """A key made by another server works here on its first request."""
    checker = KeyChecker(ledger, None, KeyCache(5.0))
    key = "am_proj_made_elsewhere_a_moment_later"
    assert asyncio.run(checker.principal_of(hash_key(key))) is None
    ledger.ensure_project("proj_a", "a")
    ledger.add_key(key, "project", "proj_a")
    assert asyncio.run(checker.principal_of(hash_key(key))) == ALICE


def test_the_cache_keeps_digests_never_keys(ledger: Ledger) -> None:
    _, key = ledger.create_project("p", None, "proj_a")
    cache = KeyCache(5.0)
    asyncio.run(KeyChecker(ledger, None, cache).principal_of(hash_key(key)))
    assert key not in repr(vars(cache))
    assert hash_key(key) in cache._entries
