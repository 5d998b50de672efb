"""Budget alerts in the process (issue 17): ``on_threshold(user_id, share, meter)``.

The budget guard calls it when the usage it counts for a user (the last
reading plus what this process billed since) reaches a share of the user's
threshold: once per share, user and meter period, with no network call of
its own and outside its locks. A reset re-arms every share; a new threshold
re-arms the shares the usage no longer reaches. A callback that raises is
logged and metering goes on.
"""

from __future__ import annotations

import asyncio
import logging
import threading
from collections.abc import Callable
from datetime import datetime, timezone
from decimal import Decimal
from pathlib import Path
from typing import Any

import pytest

from agentmeter import AgentMeterClient, BudgetExceededError, meter_api_request_pay
from agentmeter.capture import budget as budget_module
from agentmeter.capture.budget import BudgetGuard
from agentmeter.errors import AgentMeterConnectionError, AgentMeterValidationError
from agentmeter.models import UserMeter

P, U = "proj", "alice"
D = Decimal
RESET_AT = datetime(2026, 11, 28, tzinfo=timezone.utc)


class FakeClient:
    """The server's user meters, read through get_user_meter (counted)."""

    def __init__(self) -> None:
        self.meters: dict[tuple[str, str], UserMeter] = {}
        self.reads = 0
        self.down = False

    def set(self, threshold: str | None, usage: str = "0", user: str = U, **more: Any) -> None:
        self.meters[(P, user)] = UserMeter(
            project_id=P,
            user_id=user,
            threshold_amount=None if threshold is None else D(threshold),
            current_usage=D(usage),
            **more,
        )

    def add(self, cost: str, user: str = U) -> None:
        meter = self.meters[(P, user)]
        self.meters[(P, user)] = meter.model_copy(
            update={"current_usage": meter.current_usage + D(cost)}
        )

    def get_user_meter(self, user_id: str, project_id: str) -> UserMeter:
        self.reads += 1
        if self.down:
            raise AgentMeterConnectionError("connection refused")
        return self.meters.get(
            (project_id, user_id), UserMeter(project_id=project_id, user_id=user_id)
        )


class Clock:
    def __init__(self) -> None:
        self.now = 1000.0

    def __call__(self) -> float:
        return self.now


class Calls:
    """Records every on_threshold call as (user, share, counted usage)."""

    def __init__(self) -> None:
        self.seen: list[tuple[str, Decimal, Decimal]] = []
        self.meters: list[UserMeter] = []
        self.lock = threading.Lock()

    def __call__(self, user_id: str, share: Decimal, meter: UserMeter) -> None:
        with self.lock:
            self.seen.append((user_id, share, meter.current_usage))
            self.meters.append(meter)

    @property
    def shares(self) -> list[Decimal]:
        return [share for _, share, _ in self.seen]


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(budget_module.time, "monotonic", fake)
    return fake


@pytest.fixture
def fake() -> FakeClient:
    made = FakeClient()
    made.set("10.00")
    return made


@pytest.fixture
def calls() -> Calls:
    return Calls()


@pytest.fixture
def guard(fake: FakeClient, clock: Clock, calls: Calls) -> BudgetGuard:
    return BudgetGuard(fake, ttl=5.0, on_threshold=calls)  # type: ignore[arg-type]


def spend(guard: BudgetGuard, cost: str, event_id: str, user: str = U) -> None:
    """A check, then the work billed exactly its estimate."""
    reservation = guard.reserve(P, user, D(cost))
    guard.commit(reservation, event_id, D(cost))


def test_each_default_share_fires_once_as_usage_reaches_it(guard, calls):
    for number in range(10):
        spend(guard, "1.00", f"e{number}")
    assert calls.seen == [(U, D(50), D("5.00")), (U, D(80), D("8.00")), (U, D(100), D("10.00"))]
    meter = calls.meters[0]
    assert (meter.user_id, meter.threshold_amount, meter.current_usage) == (U, D(10), D(5))
    with pytest.raises(BudgetExceededError):
        spend(guard, "0.01", "over")
    assert len(calls.seen) == 3


def test_no_network_call_is_added(fake, clock, calls):
    quiet = BudgetGuard(fake, ttl=5.0)  # type: ignore[arg-type]
    for number in range(10):
        spend(quiet, "1.00", f"q{number}")
    reads = fake.reads
    fake.set("10.00")
    alerting = BudgetGuard(fake, ttl=5.0, on_threshold=calls)  # type: ignore[arg-type]
    for number in range(10):
        spend(alerting, "1.00", f"a{number}")
    assert fake.reads - reads == reads == 1
    assert calls.shares == [D(50), D(80), D(100)]


def test_a_check_that_is_not_billed_yet_does_not_fire(guard, calls):
    reservation = guard.reserve(P, U, D("6.00"))  # an estimate: the work has not run
    assert calls.seen == []
    guard.release(reservation)  # it failed: nothing billed
    assert calls.seen == []
    spend(guard, "6.00", "e1")
    assert calls.shares == [D(50)]


def test_other_checks_in_flight_do_not_count_for_the_alert(guard, calls):
    held = guard.reserve(P, U, D("4.00"))  # another call, still running
    spend(guard, "2.00", "e1")
    assert calls.seen == []  # 2 billed, not 6
    guard.commit(held, "e2", D("4.00"))
    assert calls.seen == [(U, D(50), D("6.00"))]


def test_unchecked_work_billed_to_a_watched_user_counts(guard, calls):
    spend(guard, "1.00", "e1")
    watched = guard.watching(P, U)
    assert watched is not None
    guard.commit(watched, "e2", D("4.00"))
    assert calls.shares == [D(50)]


def test_a_reading_that_shows_the_crossing_fires(guard, fake, clock, calls):
    spend(guard, "1.00", "e1")
    fake.add("8.00")  # other processes spent
    clock.now += 5
    guard.reserve(P, U, D(0))
    assert calls.seen == [(U, D(50), D("9.00")), (U, D(80), D("9.00"))]


def test_first_sight_of_a_user_past_shares_fires_them_in_order(guard, fake, calls):
    fake.set("10.00", usage="8.50")
    guard.reserve(P, U, D(0))
    assert calls.shares == [D(50), D(80)]


def test_a_refused_check_still_announces_what_its_reading_showed(guard, fake, calls):
    fake.set("10.00", usage="10.00")
    with pytest.raises(BudgetExceededError):
        guard.reserve(P, U, D("1.00"))
    assert calls.shares == [D(50), D(80), D(100)]


def test_readings_of_the_same_period_do_not_fire_again(guard, fake, clock, calls):
    fake.set("10.00", usage="6.00")
    guard.reserve(P, U, D(0))
    for _ in range(3):
        clock.now += 5
        guard.reserve(P, U, D(0))
    assert calls.shares == [D(50)]


def test_a_reset_rearms_every_share(guard, fake, clock, calls):
    for number in range(9):
        spend(guard, "1.00", f"e{number}")
        fake.add("1.00")
    guard.delivered([f"e{number}" for number in range(9)])
    assert calls.shares == [D(50), D(80)]
    fake.set("10.00", usage="0", last_reset_at=RESET_AT)  # reset_user_meter()
    guard.forget(P, U)  # what the client does after a reset
    guard.reserve(P, U, D(0))
    assert calls.shares == [D(50), D(80)]
    for number in range(5):
        spend(guard, "1.00", f"f{number}")
    assert calls.shares == [D(50), D(80), D(50)]


def test_a_reading_lower_than_the_last_rearms(guard, fake, clock, calls):
    fake.set("10.00", usage="6.00")
    guard.reserve(P, U, D(0))
    fake.set("10.00", usage="1.00")  # reset elsewhere, by a server without last_reset_at
    clock.now += 5
    guard.reserve(P, U, D(0))
    assert calls.shares == [D(50)]
    spend(guard, "4.00", "e1")
    assert calls.shares == [D(50), D(50)]


def test_a_new_last_reset_at_rearms_even_when_usage_grew(guard, fake, clock, calls):
    fake.set("10.00", usage="6.00")
    guard.reserve(P, U, D(0))
    assert calls.shares == [D(50)]
    # reset, then more spent elsewhere than before, all between two readings
    fake.set("10.00", usage="7.00", last_reset_at=RESET_AT)
    clock.now += 5
    guard.reserve(P, U, D(0))
    assert calls.shares == [D(50), D(50)]


def test_a_new_threshold_rearms_the_shares_no_longer_reached(guard, fake, clock, calls):
    fake.set("10.00", usage="8.50")
    guard.reserve(P, U, D(0))
    assert calls.shares == [D(50), D(80)]
    fake.set("15.00", usage="8.50")  # 56%: 50 stays announced, 80 re-arms
    clock.now += 5
    guard.reserve(P, U, D(0))
    assert calls.shares == [D(50), D(80)]
    spend(guard, "3.50", "e1")  # 12.00 of 15.00: 80%
    assert calls.seen[-1] == (U, D(80), D("12.00"))
    fake.set(None, usage="12.00")  # no threshold: nothing fires, all re-arm
    clock.now += 5
    spend(guard, "1.00", "e2")
    assert len(calls.seen) == 3


def test_users_are_counted_apart(guard, fake, calls):
    fake.set("10.00", user="bob")
    spend(guard, "5.00", "e1")
    spend(guard, "5.00", "e2", user="bob")
    assert [(user, share) for user, share, _ in calls.seen] == [(U, D(50)), ("bob", D(50))]


def test_no_threshold_and_an_unreadable_meter_never_fire(guard, fake, clock, calls):
    fake.set(None, usage="100")
    spend(guard, "5.00", "e1")
    fake.down = True
    spend(guard, "5.00", "e2", user="bob")
    assert calls.seen == []


def test_custom_shares(fake, clock, calls):
    guard = BudgetGuard(fake, on_threshold=calls, threshold_shares=["25", 90, D("33.3")])  # type: ignore[arg-type]
    assert guard.threshold_shares == (D(25), D("33.3"), D(90))
    for number in range(10):
        spend(guard, "1.00", f"e{number}")
    assert calls.shares == [D(25), D("33.3"), D(90)]


@pytest.mark.parametrize("shares", [[0], [-5], ["lots"], "80", [None]])
def test_bad_shares_are_refused_when_the_client_is_made(tmp_path: Path, shares: Any) -> None:
    with pytest.raises(AgentMeterValidationError, match="threshold_shares"):
        AgentMeterClient(
            base_url=f"sqlite:///{tmp_path / 'ledger.db'}",
            project_id="p",
            on_threshold=print,
            threshold_shares=shares,
        )


def test_a_callback_that_raises_is_logged_and_metering_goes_on(fake, clock, caplog):
    seen: list[Decimal] = []

    def broken(user_id: str, share: Decimal, meter: UserMeter) -> None:
        seen.append(share)
        raise RuntimeError("the pager is down")

    guard = BudgetGuard(fake, on_threshold=broken)  # type: ignore[arg-type]
    with caplog.at_level(logging.ERROR, logger="agentmeter"):
        for number in range(10):
            spend(guard, "1.00", f"e{number}")
    assert seen == [D(50), D(80), D(100)]
    failures = [r for r in caplog.records if "on_threshold failed" in r.getMessage()]
    assert len(failures) == 3
    assert failures[0].name == "agentmeter"
    assert failures[0].exc_info is not None
    with pytest.raises(BudgetExceededError):  # the guard still works
        guard.reserve(P, U, D("0.01"))


def test_the_callback_may_use_the_guard_without_a_deadlock(fake, clock):
    done: list[Decimal] = []

    def checks_again(user_id: str, share: Decimal, meter: UserMeter) -> None:
        guard.release(guard.reserve(P, user_id, D(0)))
        done.append(share)

    guard = BudgetGuard(fake, ttl=0.0, on_threshold=checks_again)  # type: ignore[arg-type]
    worker = threading.Thread(target=lambda: [spend(guard, "1.00", f"e{n}") for n in range(6)])
    worker.start()
    worker.join(timeout=10)
    assert not worker.is_alive()
    assert done == [D(50)]


def test_each_share_fires_once_among_threads(fake, clock, calls):
    fake.set("100.00")
    guard = BudgetGuard(fake, on_threshold=calls)  # type: ignore[arg-type]
    start = threading.Barrier(10)

    def work(number: int) -> None:
        start.wait()
        for turn in range(10):
            spend(guard, "1.00", f"e{number}-{turn}")

    threads = [threading.Thread(target=work, args=(n,)) for n in range(10)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert sorted(calls.shares) == [D(50), D(80), D(100)]


# ---------------------------------------------------------------- end to end


def test_a_client_passes_on_threshold_to_its_guard(
    make_client: Callable[..., AgentMeterClient], calls: Calls
) -> None:
    client = make_client(on_threshold=calls, threshold_shares=[50, 100])
    client.set_user_meter(threshold_amount="1.00", user_id="u1")
    assert client.budget.on_threshold is calls
    assert client.budget.threshold_shares == (D(50), D(100))

    @meter_api_request_pay(client, unit_price="0.30", enforce_budget=True)
    def answer(question: str, user_id: str) -> str:
        return question

    for question in "abc":
        answer(question, user_id="u1")  # 0.30, 0.60, 0.90
    assert calls.seen == [("u1", D(50), D("0.60"))]
    with pytest.raises(BudgetExceededError):
        answer("d", user_id="u1")
    client.check_budget(user_id="u1", cost="0.10")
    assert len(calls.seen) == 1


def test_a_client_without_on_threshold_is_as_before(make_client: Callable[..., AgentMeterClient]):
    client = make_client()
    assert client.budget.on_threshold is None
    assert client.budget.threshold_shares == (D(50), D(80), D(100))


def test_the_async_client_passes_it_to_the_sync_client_it_holds(tmp_path: Path) -> None:
    from agentmeter import AsyncAgentMeterClient

    calls = Calls()
    client = AsyncAgentMeterClient(
        base_url=f"sqlite:///{tmp_path / 'ledger.db'}",
        project_id="p",
        on_threshold=calls,
        threshold_shares=["90"],
    )
    try:
        assert client.budget.on_threshold is calls
        assert client.budget.threshold_shares == (D(90),)
    finally:
        asyncio.run(client.aclose())
