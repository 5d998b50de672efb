"""BudgetGuard arithmetic against a fake client and a fake clock.

    allowed  <=>  cached usage + reserved + cost <= threshold

A check reserves its estimate; commit() turns it into the real cost under the
event's id (or release() drops it); delivered() marks a cost as being in the
server's usage, so the next reading does not count it twice; forget() drops
the reading after the meter was set or reset.
"""

from __future__ import annotations

import threading
from decimal import Decimal

import pytest

from agentmeter.capture import budget as budget_module
from agentmeter.capture.budget import BudgetGuard
from agentmeter.errors import AgentMeterConnectionError, BudgetExceededError
from agentmeter.models import UserMeter

P, U = "proj", "alice"
D = Decimal


class FakeClient:
    """The server's user meters, read through get_user_meter (counted)."""

    def __init__(self) -> None:
        self.meters: dict[tuple[str, str], UserMeter] = {}
        self.reads = 0
        self.down = False
        self.lock = threading.Lock()

    def set(self, threshold: str | None, usage: str = "0", user: str = U) -> None:
        self.meters[(P, user)] = UserMeter(
            project_id=P,
            user_id=user,
            threshold_amount=None if threshold is None else D(threshold),
            current_usage=D(usage),
        )

    def add(self, cost: str, user: str = U) -> None:
        """The server received an event of ``cost``."""
        meter = self.meters[(P, user)]
        self.meters[(P, user)] = meter.model_copy(
            update={"current_usage": meter.current_usage + D(cost)}
        )

    def get_user_meter(self, user_id: str, project_id: str) -> UserMeter:
        with self.lock:
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


@pytest.fixture
def clock(monkeypatch: pytest.MonkeyPatch) -> Clock:
    fake = Clock()
    monkeypatch.setattr(budget_module.time, "monotonic", fake)
    return fake


@pytest.fixture
def fake() -> FakeClient:
    made = FakeClient()
    made.set("1.00")
    return made


@pytest.fixture
def guard(fake: FakeClient, clock: Clock) -> BudgetGuard:
    return BudgetGuard(fake, ttl=5.0)  # type: ignore[arg-type]


def spend(guard: BudgetGuard, cost: str, event_id: str) -> None:
    """A check, then the work billed exactly its estimate."""
    reservation = guard.reserve(P, U, D(cost))
    guard.commit(reservation, event_id, D(cost))


def test_reservations_add_up_to_the_threshold(guard):
    for number in range(3):
        spend(guard, "0.30", f"e{number}")
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.30"))
    error = caught.value
    assert (error.threshold_amount, error.current_usage, error.requested_cost) == (
        D("1.00"),
        D("0.90"),
        D("0.30"),
    )
    assert error.user_id == U
    guard.reserve(P, U, D("0.10"))  # exactly up to the threshold is allowed
    with pytest.raises(BudgetExceededError):
        guard.reserve(P, U, D("0.000001"))


def test_a_zero_cost_check_fails_only_at_or_over_the_threshold(guard, fake):
    guard.reserve(P, U, D(0))
    spend(guard, "1.00", "e1")
    with pytest.raises(BudgetExceededError):
        guard.reserve(P, U, D(0))


def test_no_threshold_means_no_limit(guard, fake):
    fake.set(None, usage="1000000")
    for number in range(5):
        spend(guard, "999", f"e{number}")


def test_the_cached_usage_counts(guard, fake):
    fake.set("1.00", usage="0.95")
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.10"))
    assert caught.value.current_usage == D("0.95")
    guard.reserve(P, U, D("0.05"))


def test_commit_with_the_actual_cost(guard):
    reservation = guard.reserve(P, U, D("0.50"))
    guard.commit(reservation, "e1", D("0.20"))  # cheaper than estimated
    guard.reserve(P, U, D("0.80"))
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.01"))
    assert caught.value.current_usage == D("1.00")


def test_commit_of_more_than_estimated(guard):
    reservation = guard.reserve(P, U, D(0))  # token work: unknown until it returns
    guard.commit(reservation, "e1", D("0.70"))
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.31"))
    assert caught.value.current_usage == D("0.70")


def test_release_gives_the_reservation_back(guard):
    held = guard.reserve(P, U, D("0.90"))
    with pytest.raises(BudgetExceededError):
        guard.reserve(P, U, D("0.20"))
    guard.release(held)
    guard.reserve(P, U, D("1.00"))


def test_commit_without_an_event_releases(guard):
    held = guard.reserve(P, U, D("0.90"))
    guard.commit(held, None, D(0))  # nothing was billed (an instant charge of 0)
    guard.reserve(P, U, D("1.00"))


def test_the_meter_is_read_once_per_ttl(guard, fake, clock):
    for number in range(3):
        spend(guard, "0.10", f"e{number}")
    assert fake.reads == 1
    clock.now += 4.9
    guard.reserve(P, U, D(0))
    assert fake.reads == 1
    clock.now += 0.1
    guard.reserve(P, U, D(0))
    assert fake.reads == 2


def test_each_user_has_its_own_reading(guard, fake):
    fake.set("0.50", user="bob")
    spend(guard, "1.00", "e1")
    guard.reserve(P, "bob", D("0.50"))
    with pytest.raises(BudgetExceededError):
        guard.reserve(P, U, D("0.01"))
    assert fake.reads == 2


def test_ttl_zero_reads_every_time(fake, clock):
    guard = BudgetGuard(fake, ttl=0)  # type: ignore[arg-type]
    for number in range(4):
        spend(guard, "0.10", f"e{number}")
    assert fake.reads == 4


def test_a_refresh_sees_usage_from_elsewhere(guard, fake, clock):
    spend(guard, "0.10", "e1")
    fake.add("0.85")  # another process charged this user
    guard.reserve(P, U, D("0.50"))  # still the cached reading
    clock.now += 5
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.10"))
    # 0.85 from elsewhere + this process's 0.10 (not delivered yet) + the 0.50 held above
    assert caught.value.current_usage == D("1.45")


def test_undelivered_costs_stay_counted_after_a_refresh(guard, fake, clock):
    for number in range(3):
        spend(guard, "0.30", f"e{number}")
    clock.now += 5  # the server has none of them yet
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.30"))
    assert caught.value.current_usage == D("0.90")


def test_delivered_costs_are_not_counted_twice(guard, fake, clock):
    for number in range(3):
        spend(guard, "0.30", f"e{number}")
    fake.add("0.60")
    guard.delivered(["e0", "e1", "unknown-event"])
    # Until the next reading, the delivered costs are still counted (once).
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.30"))
    assert caught.value.current_usage == D("0.90")
    clock.now += 5
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.30"))
    assert caught.value.current_usage == D("0.90")  # 0.60 read + 0.30 of e2 not delivered
    fake.add("0.30")
    guard.delivered(["e2"])
    clock.now += 5
    guard.reserve(P, U, D("0.10"))  # 0.90 read, nothing held twice


def test_a_delivery_during_a_read_is_counted_at_most_twice_never_zero_times(fake, clock):
    """The event lands on the server while the meter is being read."""
    guard = BudgetGuard(fake, ttl=0)  # type: ignore[arg-type]
    spend(guard, "0.40", "e1")
    original = fake.get_user_meter

    def read_then_deliver(user_id, project_id):
        meter = original(user_id, project_id)  # read before the event arrived...
        fake.add("0.40")
        guard.delivered(["e1"])  # ...which is delivered before the read returns
        return meter

    fake.get_user_meter = read_then_deliver
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.61"))
    assert caught.value.current_usage == D("0.40")  # counted once, from the reservation
    fake.get_user_meter = original
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.61"))
    assert caught.value.current_usage == D("0.40")  # now from the reading


def test_forget_drops_the_reading_and_what_was_delivered(guard, fake, clock):
    for number in range(3):
        spend(guard, "0.30", f"e{number}")
    fake.add("0.90")
    guard.delivered(["e0", "e1", "e2"])
    fake.set("1.00", usage="0")  # the meter was reset
    guard.forget(P, U)
    reads = fake.reads
    for number in range(3):
        spend(guard, "0.30", f"f{number}")
    assert fake.reads == reads + 1  # read again at once, despite the TTL
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.30"))
    assert caught.value.current_usage == D("0.90")


def test_forget_keeps_what_is_not_delivered(guard, fake):
    spend(guard, "0.30", "e0")
    guard.forget(P, U)  # threshold raised, say: the reading is stale, the event still pending
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.71"))
    assert caught.value.current_usage == D("0.30")
    guard.forget("other-project", "nobody")  # unknown: nothing to do


def test_an_unreadable_meter_fails_open(guard, fake, caplog):
    fake.down = True
    guard.reserve(P, U, D("5.00"))  # no reading at all: allowed
    assert any("could not read the meter" in r.getMessage() for r in caplog.records)


def test_an_unreadable_meter_keeps_the_last_reading(guard, fake, clock):
    spend(guard, "0.90", "e0")
    clock.now += 5
    fake.down = True
    with pytest.raises(BudgetExceededError):
        guard.reserve(P, U, D("0.20"))


def test_an_unreadable_meter_raises_when_strict(guard, fake):
    fake.down = True
    with pytest.raises(AgentMeterConnectionError):
        guard.reserve(P, U, D("0.10"), strict=True)


def test_an_unreadable_meter_is_asked_once_per_ttl(guard, fake, clock):
    """A server that is down must not cost every call a failed read."""
    fake.down = True
    for _ in range(5):
        guard.reserve(P, U, D("0.01"))
    assert fake.reads == 1
    with pytest.raises(AgentMeterConnectionError):  # strict asks again, and raises
        guard.reserve(P, U, D("0.01"), strict=True)
    assert fake.reads == 2
    clock.now += 5
    fake.down = False
    with pytest.raises(BudgetExceededError):
        guard.reserve(P, U, D("0.96"))  # read again: 0.05 held + 0.96 > 1.00
    assert fake.reads == 3


def test_many_threads_never_overspend(fake, clock):
    guard = BudgetGuard(fake, ttl=5.0)  # type: ignore[arg-type]
    fake.set("10.00")
    allowed, refused = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(16)

    def worker(number: int) -> None:
        barrier.wait()
        for attempt in range(20):
            try:
                reservation = guard.reserve(P, U, D("0.07"))
            except BudgetExceededError:
                with lock:
                    refused.append(number)
                continue
            guard.commit(reservation, f"e{number}-{attempt}", D("0.07"))
            with lock:
                allowed.append(number)

    threads = [threading.Thread(target=worker, args=(n,)) for n in range(16)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    assert len(allowed) == 142  # 142 x 0.07 = 9.94; one more would be 10.01
    assert len(refused) == 16 * 20 - 142
    assert fake.reads == 1


def test_cancel_undoes_a_commit(guard):
    reservation = guard.reserve(P, U, D("0.50"))
    held = guard.commit(reservation, "e1", D("0.60"))
    assert held.cost == D("0.60")
    guard.cancel(held, "e1")
    guard.delivered(["e1"])  # unknown now: changes nothing
    guard.reserve(P, U, D("1.00"))


# ---------------------------------------------- the capture side: _capture.track


class FakeTracker:
    """Hands each event straight to ``deliver`` (as a worker that is very quick)."""

    def __init__(self, deliver=None, fail=False):
        self.deliver = deliver
        self.fail = fail
        self.ids: list[str] = []

    def track_api_request_pay(self, api_calls, unit_price, user_id, metadata, **fields):
        if self.fail:
            raise RuntimeError("queue broken")
        self.ids.append(fields["event_id"])
        if self.deliver is not None:
            self.deliver([fields["event_id"]])
        return fields["event_id"]


def test_track_holds_the_cost_under_the_event_before_it_is_tracked(guard, fake, clock):
    from agentmeter.capture.charge import Charge, track

    charge = Charge.declare("api_request_pay", unit_price="0.30")

    def deliver(ids):
        fake.add("0.30")
        guard.delivered(ids)

    tracker = FakeTracker(deliver)
    for _ in range(3):
        reservation = guard.reserve(P, U, D("0.30"))
        track(charge, tracker, (guard, reservation), lambda: D("0.30"), U, {})
        clock.now += 5  # every check reads the meter again
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.30"))
    assert caught.value.current_usage == D("0.90")  # each cost counted once


def test_track_releases_when_tracking_fails(guard):
    from agentmeter.capture.charge import Charge, track

    charge = Charge.declare("api_request_pay", unit_price="0.30")
    reservation = guard.reserve(P, U, D("0.90"))
    with pytest.raises(RuntimeError):
        track(charge, FakeTracker(fail=True), (guard, reservation), lambda: D("0.90"), U, {})
    guard.reserve(P, U, D("1.00"))
    assert guard._events == {}


def test_track_releases_when_the_cost_cannot_be_computed(guard):
    from agentmeter.capture.charge import Charge, track

    def broken() -> Decimal:
        raise ValueError("no price")

    charge = Charge.declare("api_request_pay", unit_price="0.30")
    reservation = guard.reserve(P, U, D("0.90"))
    with pytest.raises(ValueError):
        track(charge, FakeTracker(), (guard, reservation), broken, U, {})
    guard.reserve(P, U, D("1.00"))


def test_track_of_nothing_to_bill_releases(guard):
    from agentmeter.capture.charge import Charge, track

    charge = Charge.declare("instant_pay", amount="0")
    reservation = guard.reserve(P, U, D("0.50"))
    assert track(charge, FakeTracker(), (guard, reservation), lambda: D(0), U, {}) is None
    guard.reserve(P, U, D("1.00"))


def test_unchecked_costs_of_a_watched_user_count(guard):
    assert guard.watching(P, U) is None  # never checked: nothing to keep up to date
    spend(guard, "0.30", "e1")
    held = guard.watching(P, U)
    assert held is not None
    assert held.cost == 0
    guard.commit(held, "e2", D("0.50"))  # billed without a check
    with pytest.raises(BudgetExceededError) as caught:
        guard.reserve(P, U, D("0.30"))
    assert caught.value.current_usage == D("0.80")
    assert guard.watching(P, "bob") is None
