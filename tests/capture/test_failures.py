"""When the metered code fails, and when metering fails.

- The user's exception passes through untouched: the same object, the same
  frames of user code, no cause or context added; by default nothing is
  billed, with ``bill_on_error=True`` the call is billed with
  ``metadata["status"] == "error"``.
- A metering fault (a condition or extractor that raises, an invalid value,
  a server that cannot be reached) never reaches the caller: it is logged and
  counted; ``strict=True`` raises it instead.
- The wrapped call never touches the network: events are delivered by the
  tracker's thread.
"""

from __future__ import annotations

import asyncio
import logging
import threading
import time
import traceback
from decimal import Decimal

import pytest

from agentmeter import (
    AgentMeterClient,
    meter_api_request_pay,
    meter_instant_pay,
    meter_token_based_pay,
)
from agentmeter.capture.charge import metering_errors
from agentmeter.testing import free_port


class Boom(Exception):
    pass


class Stop(BaseException):
    """Not an Exception (like KeyboardInterrupt): never billed."""


def user_frames(exc: BaseException) -> list[tuple[str, str | None]]:
    """The frames of the traceback below the test, without the SDK's wrapper frames."""
    frames = traceback.extract_tb(exc.__traceback__)[1:]
    return [(f.name, f.line) for f in frames if "/agentmeter/" not in f.filename]


def make_failing(kind: str, raised: list[BaseException], error: type[BaseException] = Boom):
    """A callable of ``kind`` that raises a fresh ``error`` (kept in ``raised``)."""

    def explode():
        exc = error("it broke")
        raised.append(exc)
        raise exc

    if kind == "function":

        def work(query, user_id):
            explode()

        return work, lambda metered, *a, **k: metered(*a, **k)
    if kind == "async":

        async def work(query, user_id):
            await asyncio.sleep(0)
            explode()

        return work, lambda metered, *a, **k: asyncio.run(metered(*a, **k))
    if kind == "generator":

        def work(query, user_id):
            yield {"usage_metadata": {"input_tokens": 10, "output_tokens": 1}}
            yield {"usage_metadata": {"input_tokens": 0, "output_tokens": 2}}
            explode()

        return work, lambda metered, *a, **k: list(metered(*a, **k))
    if kind == "async_generator":

        async def work(query, user_id):
            yield {"usage_metadata": {"input_tokens": 10, "output_tokens": 1}}
            yield {"usage_metadata": {"input_tokens": 0, "output_tokens": 2}}
            explode()

        async def consume(metered, *a, **k):
            return [chunk async for chunk in metered(*a, **k)]

        return work, lambda metered, *a, **k: asyncio.run(consume(metered, *a, **k))
    raise AssertionError(kind)


KINDS = ["function", "async", "generator", "async_generator"]


@pytest.mark.parametrize("kind", KINDS)
def test_the_users_exception_is_reraised_untouched(kind, client, ledger):
    raised: list[BaseException] = []
    work, call = make_failing(kind, raised)
    metered = meter_api_request_pay(client, unit_price="0.5")(work)

    with pytest.raises(Boom) as bare:
        call(work, "q", "u-bare")
    with pytest.raises(Boom) as caught:
        call(metered, "q", "u1")

    assert caught.value is raised[1]
    assert caught.value.args == ("it broke",)
    assert caught.value.__cause__ is None
    assert caught.value.__context__ is None
    assert user_frames(caught.value) == user_frames(bare.value)
    assert user_frames(caught.value)[-1] == ("explode", "raise exc")
    ledger.settle()
    assert ledger.events() == []  # not billed by default


@pytest.mark.parametrize("kind", KINDS)
def test_bill_on_error_bills_with_status_error(kind, client, ledger):
    raised: list[BaseException] = []
    work, call = make_failing(kind, raised)
    metered = meter_api_request_pay(client, unit_price="0.5", bill_on_error=True)(work)

    with pytest.raises(Boom) as caught:
        call(metered, "q", user_id="u1")

    assert caught.value is raised[0]
    assert caught.value.__context__ is None
    ledger.settle()
    (event,) = ledger.events("u1")
    assert event.metadata["status"] == "error"
    assert event.metadata["error"] == "Boom"
    assert ledger.usage("u1") == Decimal("0.5")


@pytest.mark.parametrize("kind", ["generator", "async_generator"])
def test_bill_on_error_bills_the_tokens_a_stream_produced(kind, client, ledger):
    work, call = make_failing(kind, [])
    metered = meter_token_based_pay(
        client, input_token_price="0.01", output_token_price="0.1", bill_on_error=True
    )(work)

    with pytest.raises(Boom):
        call(metered, "q", "u1")

    ledger.settle()
    (event,) = ledger.events("u1")
    assert (event.tokens_in, event.tokens_out) == (10, 3)
    assert event.metadata["status"] == "error"
    assert ledger.usage("u1") == Decimal("0.40")


@pytest.mark.parametrize("kind", KINDS)
def test_base_exceptions_are_never_billed(kind, client, ledger):
    raised: list[BaseException] = []
    work, call = make_failing(kind, raised, error=Stop)
    metered = meter_instant_pay(client, amount="3", bill_on_error=True)(work)

    with pytest.raises(Stop) as caught:
        call(metered, "q", "u1")

    assert caught.value is raised[0]
    ledger.settle()
    assert ledger.events() == []


def test_a_method_raising_passes_through(client, ledger):
    class Agent:
        @meter_api_request_pay(client, unit_price="1")
        def act(self, user_id):
            raise KeyError("missing")

    with pytest.raises(KeyError) as caught:
        Agent().act("u1")
    assert caught.value.args == ("missing",)
    ledger.settle()
    assert ledger.events() == []


def test_a_condition_that_raises_is_a_fault_the_call_still_runs(client, ledger, caplog):
    @meter_instant_pay(client, amount="2", condition_func=lambda *a, **k: 1 / 0)
    def feature(user_id):
        return "ran"

    before = metering_errors.value
    with caplog.at_level(logging.WARNING, logger="agentmeter"):
        assert feature("u1") == "ran"
    assert metering_errors.value == before + 1
    assert any("condition of" in record.getMessage() for record in caplog.records)
    ledger.settle()
    assert ledger.events() == []


def test_a_condition_that_raises_with_strict(client, ledger):
    ran = []

    @meter_instant_pay(client, amount="2", condition_func=lambda *a, **k: 1 / 0, strict=True)
    def feature(user_id):
        ran.append(True)

    with pytest.raises(ZeroDivisionError):
        feature("u1")
    assert ran == []


def test_an_invalid_usage_value_is_a_fault(client, ledger):
    @meter_api_request_pay(client, unit_price="1")
    def work(user_id):
        return "done"

    before = metering_errors.value
    assert work("x" * 300) == "done"  # a user id longer than 256 characters
    assert metering_errors.value == before + 1
    ledger.settle()
    assert ledger.events() == []


def test_the_call_never_touches_the_network(client, ledger):
    """Every request goes out on the tracker's delivery thread, never the caller's."""
    threads: list[str] = []
    transport = client.transport
    original = transport.request

    def recording(*args, **kwargs):
        threads.append(threading.current_thread().name)
        return original(*args, **kwargs)

    transport.request = recording  # type: ignore[method-assign]

    @meter_api_request_pay(client, unit_price="0.1")
    def sync_work(user_id):
        return 1

    @meter_token_based_pay(client)
    async def async_work(user_id):
        return {"usage": {"prompt_tokens": 1, "completion_tokens": 1}}

    for _ in range(20):
        sync_work("u1")
        asyncio.run(async_work("u1"))
    assert client.flush(timeout=10)
    del transport.request
    assert threads
    assert set(threads) == {"agentmeter-delivery"}
    assert len(ledger.events("u1")) == 40


def test_a_server_that_cannot_be_reached_never_reaches_the_caller(tmp_path, caplog):
    client = AgentMeterClient(
        api_key="am_proj_unreachable",
        base_url=f"http://127.0.0.1:{free_port()}",
        project_id="proj_unreachable",
        retry_attempts=0,
        connect_timeout=0.5,
    )
    try:

        @meter_api_request_pay(client, unit_price="0.2")
        def work(user_id):
            return "still works"

        @meter_api_request_pay(client, unit_price="0.2")
        async def awork(user_id):
            return "still works"

        before = metering_errors.value
        with caplog.at_level(logging.WARNING, logger="agentmeter"):
            assert work("u1") == "still works"
            assert asyncio.run(awork("u1")) == "still works"
            assert client.flush(timeout=0.5) is False
            deadline = time.monotonic() + 10
            while client.tracker.stats().spilled < 2 and time.monotonic() < deadline:
                time.sleep(0.02)
        stats = client.tracker.stats()
        assert stats.spilled == 2  # kept in the outbox for later, not lost
        assert stats.last_error is not None
        assert metering_errors.value == before  # a delivery fault is the tracker's to count
        assert any("could not deliver" in r.getMessage() for r in caplog.records)
    finally:
        client.close(timeout=0.5)
