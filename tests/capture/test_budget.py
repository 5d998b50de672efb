"""Budget guards against the live server: a user with a threshold of 1.00 and
calls costing 0.30 gets exactly three runs, then BudgetExceededError (and the
work does not run), however the calls arrive; after a reset it runs again."""

from __future__ import annotations

import asyncio
import threading
from decimal import Decimal

import pytest

from agentmeter import (
    AgentMeterTracker,
    BudgetExceededError,
    meter_api_request_pay,
    meter_instant_pay,
    meter_token_based_pay,
    track_api_request_pay,
    track_instant_pay,
)

THRESHOLD = Decimal("1.00")
COST = Decimal("0.30")


def attempt(run, times: int) -> tuple[int, list[BudgetExceededError]]:
    """Call ``run()`` ``times`` times: how many ran, and the refusals."""
    ran, refused = 0, []
    for _ in range(times):
        try:
            run()
        except BudgetExceededError as exc:
            refused.append(exc)
        else:
            ran += 1
    return ran, refused


def check_refusal(error: BudgetExceededError, user: str = "u1") -> None:
    assert error.user_id == user
    assert error.threshold_amount == THRESHOLD
    assert error.current_usage == Decimal("0.90")
    assert error.requested_cost == COST


@pytest.fixture
def budget_user(client):
    client.set_user_meter(threshold_amount=THRESHOLD, user_id="u1")
    return "u1"


@pytest.mark.parametrize("ttl", [5.0, 0.0], ids=["cached", "read-every-call"])
@pytest.mark.parametrize(
    "surface",
    [
        "api_decorator",
        "instant_decorator",
        "async_decorator",
        "generator",
        "with_block",
        "async_with_block",
    ],
)
def test_three_runs_then_refused(surface, ttl, make_client, ledger):
    client = make_client(budget_cache_ttl=ttl)
    client.set_user_meter(threshold_amount=THRESHOLD, user_id="u1")
    runs = []

    if surface == "api_decorator":

        @meter_api_request_pay(client, unit_price=COST, enforce_budget=True)
        def work(user_id):
            runs.append(user_id)

        def run():
            work("u1")
    elif surface == "instant_decorator":

        @meter_instant_pay(client, amount="0.30", enforce_budget=True)
        def work(user_id):
            runs.append(user_id)

        def run():
            work(user_id="u1")
    elif surface == "async_decorator":

        @meter_api_request_pay(client, unit_price="0.3", enforce_budget=True)
        async def work(user_id):
            runs.append(user_id)

        def run():
            asyncio.run(work("u1"))
    elif surface == "generator":

        @meter_api_request_pay(client, unit_price="0.3", enforce_budget=True)
        def work(user_id):
            runs.append(user_id)
            yield 1

        def run():
            list(work("u1"))
    elif surface == "with_block":

        def run():
            with track_api_request_pay(client, None, None, "u1", "0.30", enforce_budget=True):
                runs.append("u1")
    else:

        async def block():
            async with track_instant_pay(
                client, None, None, "u1", amount="0.3", enforce_budget=True
            ):
                runs.append("u1")

        def run():
            asyncio.run(block())

    ran, refused = attempt(run, 5)

    assert ran == 3
    assert len(runs) == 3  # refused work never ran
    assert len(refused) == 2
    check_refusal(refused[0])
    assert client.flush(timeout=10)
    assert ledger.usage("u1") == Decimal("0.90")
    assert len(ledger.events("u1")) == 3


@pytest.mark.parametrize("ttl", [5.0, 0.0], ids=["cached", "read-every-call"])
def test_eight_threads_at_once_get_exactly_three_runs(ttl, make_client, ledger):
    client = make_client(budget_cache_ttl=ttl)
    client.set_user_meter(threshold_amount=THRESHOLD, user_id="u1")
    runs, refused = [], []
    lock = threading.Lock()
    barrier = threading.Barrier(8)

    @meter_api_request_pay(client, unit_price="0.30", enforce_budget=True)
    def work(user_id):
        with lock:
            runs.append(threading.get_ident())

    def thread_main():
        barrier.wait()
        try:
            work("u1")
        except BudgetExceededError as exc:
            with lock:
                refused.append(exc)

    threads = [threading.Thread(target=thread_main) for _ in range(8)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join(30)

    assert len(runs) == 3
    assert len(refused) == 5
    for error in refused:
        check_refusal(error)
    assert client.flush(timeout=10)
    assert ledger.usage("u1") == Decimal("0.90")
    assert ledger.total() == Decimal("0.90")


def test_after_a_reset_calls_run_again(client, ledger, budget_user):
    @meter_api_request_pay(client, unit_price="0.30", enforce_budget=True)
    def work(user_id):
        return "ran"

    assert attempt(lambda: work("u1"), 4)[0] == 3
    meter = client.reset_user_meter(user_id="u1")  # delivers the three events first
    assert meter.current_usage == 0

    ran, refused = attempt(lambda: work("u1"), 4)
    assert ran == 3
    check_refusal(refused[0])
    assert client.flush(timeout=10)
    assert ledger.usage("u1") == Decimal("0.90")  # the three since the reset
    assert len(ledger.events("u1")) == 6
    assert ledger.total() == Decimal("1.80")


def test_raising_the_threshold_takes_effect_at_once(client, budget_user):
    @meter_instant_pay(client, amount="0.30", enforce_budget=True)
    def work(user_id):
        return "ran"

    assert attempt(lambda: work("u1"), 4)[0] == 3
    client.set_user_meter(threshold_amount="2.00", user_id="u1")
    assert attempt(lambda: work("u1"), 4)[0] == 3  # 0.90 + 3 x 0.30 = 1.80
    assert client.flush(timeout=10)


def test_a_refused_call_bills_nothing_and_a_failed_one_releases(client, ledger, budget_user):
    @meter_api_request_pay(client, unit_price="0.30", enforce_budget=True)
    def work(user_id, fail=False):
        if fail:
            raise ValueError("failed")
        return "ran"

    for _ in range(5):  # failures are not billed: their reservations are released
        with pytest.raises(ValueError):
            work("u1", fail=True)
    assert attempt(lambda: work("u1"), 4)[0] == 3
    assert client.flush(timeout=10)
    assert ledger.usage("u1") == Decimal("0.90")


def test_users_have_separate_budgets(client, ledger, budget_user):
    client.set_user_meter(threshold_amount="0.60", user_id="u2")

    @meter_api_request_pay(client, unit_price="0.30", enforce_budget=True)
    def work(user_id):
        return "ran"

    assert attempt(lambda: work("u1"), 5)[0] == 3
    assert attempt(lambda: work("u2"), 5)[0] == 2
    assert attempt(lambda: work("no-threshold"), 5)[0] == 5
    assert client.flush(timeout=10)
    assert ledger.usage("u2") == Decimal("0.60")


def test_usage_on_the_server_counts(client, budget_user):
    client.increment_user_meter(amount="0.50", user_id="u1")

    @meter_api_request_pay(client, unit_price="0.30", enforce_budget=True)
    def work(user_id):
        return "ran"

    ran, refused = attempt(lambda: work("u1"), 3)
    assert ran == 1  # 0.50 + 0.30 = 0.80; one more would be 1.10
    assert refused[0].current_usage == Decimal("0.80")
    assert client.flush(timeout=10)


def test_token_work_runs_until_the_threshold_is_reached(client, ledger, budget_user):
    """Its cost is unknown before it runs: it is refused only once usage is at the threshold."""

    @meter_token_based_pay(
        client, input_token_price="0.01", output_token_price="0.01", enforce_budget=True
    )
    def llm(user_id):
        return {"usage": {"prompt_tokens": 30, "completion_tokens": 10}}  # 0.40

    ran, refused = attempt(lambda: llm("u1"), 5)
    assert ran == 3  # 0 -> 0.40 -> 0.80 -> 1.20, then refused
    assert refused[0].current_usage == Decimal("1.20")
    assert refused[0].requested_cost == 0
    assert client.flush(timeout=10)
    assert ledger.usage("u1") == Decimal("1.20")


def test_check_budget(client, budget_user):
    @meter_api_request_pay(client, unit_price="0.30", enforce_budget=True)
    def work(user_id):
        return "ran"

    client.check_budget("u1", cost="1.00")
    for _ in range(3):
        work("u1")
    client.check_budget("u1", cost="0.10")  # 0.90 + 0.10 fits exactly
    client.check_budget("u1")  # reserves nothing: it can be asked any number of times
    with pytest.raises(BudgetExceededError) as caught:
        client.check_budget("u1", cost="0.11")
    assert caught.value.threshold_amount == THRESHOLD
    assert caught.value.current_usage == Decimal("0.90")
    assert caught.value.requested_cost == Decimal("0.11")
    client.check_budget("someone-without-a-threshold", cost="1000")
    assert client.flush(timeout=10)


def test_without_enforce_budget_nothing_is_checked(client, ledger, budget_user):
    @meter_api_request_pay(client, unit_price="0.30")
    def work(user_id):
        return "ran"

    assert attempt(lambda: work("u1"), 5)[0] == 5
    assert client.flush(timeout=10)
    assert ledger.usage("u1") == Decimal("1.50")


class EagerTracker(AgentMeterTracker):
    """Delivers each event before the tracking call returns, as a busy worker may."""

    def _submit(self, event):
        event_id = super()._submit(event)
        assert self.flush(timeout=10)
        return event_id


@pytest.mark.parametrize("surface", ["decorator", "with_block"])
def test_an_event_delivered_before_the_call_returns_is_not_counted_twice(
    surface, make_client, ledger, tmp_path
):
    client = make_client(budget_cache_ttl=0)
    client.set_user_meter(threshold_amount=THRESHOLD, user_id="u1")
    tracker = EagerTracker(client, outbox=tmp_path / "eager.db")
    try:
        if surface == "decorator":

            @meter_api_request_pay(tracker, unit_price="0.30", enforce_budget=True)
            def work(user_id):
                return "ran"

            def run():
                work("u1")
        else:

            def run():
                with track_api_request_pay(tracker, None, None, "u1", "0.30", enforce_budget=True):
                    pass

        ran, refused = attempt(run, 5)
        assert ran == 3
        check_refusal(refused[0])
        assert ledger.usage("u1") == Decimal("0.90")
    finally:
        tracker.close(timeout=5)


@pytest.mark.parametrize("surface", ["decorator", "with_block"])
def test_costs_billed_without_a_check_count_against_the_budget(surface, make_client, ledger):
    """Work that is not guarded still spends the budget that guarded work checks."""
    client = make_client(budget_cache_ttl=60)  # no refresh: only local accounting can know
    client.set_user_meter(threshold_amount=THRESHOLD, user_id="u1")

    @meter_api_request_pay(client, unit_price="0.30", enforce_budget=True)
    def guarded(user_id):
        return "ran"

    @meter_api_request_pay(client, unit_price="0.50")
    def unguarded(user_id):
        return "ran"

    guarded("u1")  # 0.30; the guard now watches u1
    if surface == "decorator":
        unguarded("u1")  # 0.50, tracked, perhaps not delivered yet
    else:
        with track_instant_pay(client, None, None, "u1", amount="0.50"):
            pass
    with pytest.raises(BudgetExceededError) as caught:
        guarded("u1")  # 0.80 + 0.30 > 1.00
    assert caught.value.current_usage == Decimal("0.80")
    client.check_budget("u1", cost="0.20")
    assert client.flush(timeout=10)
    assert ledger.usage("u1") == Decimal("0.80")
