"""Every coroutine of AsyncAgentMeterClient against the live server, the embedded
ledger and PostgreSQL: the same answers, models and errors as the sync client.

Each test runs its scenario in one ``asyncio.run`` (the client is made and
closed inside it) and reads back through the sync client where that says
more than the async client's own answer.
"""

from __future__ import annotations

import asyncio
import threading
import uuid
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest

from agentmeter import (
    AgentMeterConfigurationError,
    AgentMeterValidationError,
    APIRequestPayEvent,
    AsyncAgentMeterClient,
    BatchResult,
    BillingRecord,
    BillingStatus,
    BudgetExceededError,
    ConflictError,
    InstantPayEvent,
    MeterEventResponse,
    MeterStats,
    NotFoundError,
    Project,
    ReportRow,
    TokenBasedPayEvent,
    UserMeter,
)
from agentmeter.models import ModelPrice, ProjectPrices
from agentmeter.transport.failover import FailoverTransport
from agentmeter.transport.threaded import ThreadedTransport

D = Decimal


def test_recording_methods_store_each_event_once(backend, project):
    async def scenario():
        async with backend.connect(project, agent_id="async-agent") as client:
            api = await client.record_api_request_pay(3, "0.01", user_id="u1", metadata={"k": 1})
            tokens = await client.record_token_based_pay(
                1000, 500, "0.000004", "0.000001", user_id="u1"
            )
            instant = await client.record_instant_pay("2.50", "a report", user_id="u2")
            event = client.build_instant_pay("0.25", "built first", user_id="u2")
            first = await client.record_event(event)
            again = await client.record_event(event)
            many = [client.build_api_request_pay(user_id=f"u{n}") for n in range(3)]
            batch = await client.record_events(many)
            wire = [client.build_token_based_pay(10, 10, "0.1", "0.2").to_dict() for _ in range(2)]
            sent = await client.send_batch(wire)
            resent = await client.send_batch(wire)
            return api, tokens, instant, first, again, batch, sent, resent

    api, tokens, instant, first, again, batch, sent, resent = asyncio.run(scenario())
    for answer in (api, tokens, instant, first):
        assert isinstance(answer, MeterEventResponse)
        assert not answer.duplicate
    assert (api.cost, tokens.cost, instant.cost) == (D("0.03"), D("0.0045"), D("2.50"))
    assert again.duplicate
    assert again.event_id == first.event_id
    assert isinstance(batch, BatchResult)
    assert (batch.accepted, batch.duplicates, batch.ok) == (3, 0, True)
    assert (sent.accepted, resent.accepted, resent.duplicates) == (2, 0, 2)

    with backend.sync(project) as reader:
        stats = reader.get_meter_stats(timeframe="all")
        events = reader.get_events(user_id="u1")
    assert stats.total_events == 4 + 3 + 2
    # 0.03 + 0.0045 + 2.50 + 0.25 + 3 x 0.001 + 2 x (10 x 0.1 + 10 x 0.2)
    assert stats.total_cost == D("8.7875")
    assert {event.agent_id for event in events} == {"async-agent"}


def test_reads_answer_what_the_sync_client_answers(backend, project):
    with backend.sync(project) as writer:
        for n in range(3):
            writer.record_api_request_pay(1, "0.5", user_id="reader", agent_id=f"a{n % 2}")
        writer.record_token_based_pay(100, 50, "0.01", "0.02", user_id="other")
        expected = (
            writer.get_events(user_id="reader", limit=2),
            writer.get_meter_stats(timeframe="all"),
            writer.get_report(granularity="month", group_by=["user", "agent"]),
            writer.get_user_meter("reader"),
        )

    async def scenario():
        async with backend.connect(project) as client:
            return (
                await client.get_events(user_id="reader", limit=2),
                await client.get_meter_stats(timeframe="all"),
                await client.get_report(granularity="month", group_by=["user", "agent"]),
                await client.get_user_meter("reader"),
                await client.health_check(),
            )

    *answers, health = asyncio.run(scenario())
    assert answers == list(expected)
    events, stats, report, meter = answers
    assert len(events) == 2
    assert all(isinstance(e, APIRequestPayEvent) for e in events)
    assert isinstance(stats, MeterStats)
    assert stats.total_cost == D("3.5")
    assert all(isinstance(row, ReportRow) for row in report)
    assert len(report) == 3
    assert isinstance(meter, UserMeter)
    assert meter.current_usage == D("1.5")
    assert health["status"] == "healthy"


def test_user_meters_set_increment_reset(backend, project):
    async def scenario():
        async with backend.connect(project) as client:
            never = await client.get_user_meter("nobody")  # 404 on the wire: a zero meter
            await client.record_instant_pay("1.25", user_id="m")
            budget = await client.set_user_meter("10", user_id="m")
            added = await client.increment_user_meter("0.75", user_id="m")
            reset = await client.reset_user_meter("m")
            after = await client.get_user_meter("m")
            return never, budget, added, reset, after

    never, budget, added, reset, after = asyncio.run(scenario())
    assert never == UserMeter(project_id=project.id, user_id="nobody")
    assert (budget.threshold_amount, budget.current_usage) == (D("10"), D("1.25"))
    assert added.current_usage == D("2.00")
    assert reset.current_usage == 0
    assert reset.last_reset_at is not None
    assert after.current_usage == 0
    assert after.threshold_amount == D("10")


def test_projects_and_billing_records(backend):
    start = datetime(2025, 1, 1, tzinfo=timezone.utc)
    wanted_id = f"proj_async_{uuid.uuid4().hex[:10]}"

    async def scenario():
        async with backend.connect(None) as admin:
            made = await admin.create_project("async made", "by the async client", wanted_id)
            with pytest.raises(ConflictError):
                await admin.create_project("again", project_id=wanted_id)
            got = await admin.get_project(made.id)
            listed = await admin.list_projects()
            renamed = await admin.update_project(made.id, name="async renamed")
            await admin.send_batch(
                [
                    admin.build_instant_pay("1.005", project_id=made.id, user_id="b").to_dict()
                    | {"timestamp": "2025-01-15T00:00:00Z"}
                ]
            )
            record = await admin.create_billing_record(made.id, start, start + timedelta(days=31))
            records = await admin.list_billing_records(made.id)
            paid = await admin.update_billing_record(record.id, status="paid")
            deleted = await admin.delete_project(made.id)
            with pytest.raises(NotFoundError):
                await admin.get_project(made.id)
            return made, got, listed, renamed, record, records, paid, deleted

    made, got, listed, renamed, record, records, paid, deleted = asyncio.run(scenario())
    assert isinstance(made, Project)
    assert made.id == wanted_id
    if backend.mode != "embedded":  # the embedded ledger has no keys
        assert made.api_key is not None
    assert got.id == made.id
    assert got.api_key is None
    assert made.id in {project.id for project in listed}
    assert renamed.name == "async renamed"
    assert renamed.description == "by the async client"
    assert isinstance(record, BillingRecord)
    assert record.amount == D("1.00")  # 1.005 rounded to cents, half-even
    assert records == [record]
    assert paid.status is BillingStatus.PAID
    assert deleted == {"deleted": True}


def test_prices_markup_and_missing_prices(backend, project):
    model = f"house-model-{uuid.uuid4().hex[:6]}"
    mystery = f"mystery-{uuid.uuid4().hex[:6]}"

    async def scenario():
        async with backend.connect(project) as client:
            row = await client.set_price(model, input="2", output="4")
            table = await client.get_prices()
            priced = await client.record_token_based_pay(1_000_000, 1_000_000, model=model)
            again = await client.set_price(model, input="1", output="1")  # the book forgets
            repriced = await client.record_token_based_pay(1_000_000, 0, model=model)
            marked = await client.set_markup("10")
            removed = await client.delete_price(model)
            client.tracker.track_token_based_pay(
                100, 10, user_id="u", model=mystery, on_unknown_model="record"
            )
            assert await client.aflush(10)
            missing = await client.get_missing_prices()
            return row, table, priced, again, repriced, marked, removed, missing

    row, table, priced, again, repriced, marked, removed, missing = asyncio.run(scenario())
    assert isinstance(row, ModelPrice)
    assert row.input == D("2")
    assert isinstance(table, ProjectPrices)
    assert [r.model for r in table.prices] == [model]
    assert priced.cost == D("6")
    assert again.input == D("1")
    assert repriced.cost == D("1")  # 2 if the price book had kept the old table
    assert marked.markup_percent == D("10")
    assert removed == {"deleted": True}
    assert [(m.model, m.events, m.tokens_in) for m in missing] == [(mystery, 1, 100)]


def test_budget_checks_see_meter_changes_made_here(backend, project):
    async def scenario():
        async with backend.connect(project, budget_cache_ttl=60) as client:
            await client.set_user_meter("1.00", user_id="spender")
            await client.check_budget("spender", "0.50")  # read, and cached for 60 s
            await client.set_user_meter("0.10", user_id="spender")  # the guard forgets
            with pytest.raises(BudgetExceededError) as raised:
                await client.check_budget("spender", "0.50")
            return raised.value

    exceeded = asyncio.run(scenario())
    assert exceeded.threshold_amount == D("0.10")
    assert exceeded.requested_cost == D("0.50")


def test_a_reset_first_delivers_what_the_tracker_holds(backend, project):
    async def scenario():
        async with backend.connect(project) as client:
            # Long flush interval: only the reset's settling step delivers it.
            client.tracker.flush_interval = 60
            client.tracker.track_instant_pay("3", "before the reset", "r")
            reset = await client.reset_user_meter("r")
            after = await client.get_user_meter("r")
            stats = await client.get_meter_stats(timeframe="all")
            return reset, after, stats

    reset, after, stats = asyncio.run(scenario())
    assert stats.total_events == 1  # delivered before the reset
    assert reset.current_usage == 0
    assert after.current_usage == 0


def test_validation_errors_are_the_sync_clients(backend, project):
    bad_calls = [
        ("record_api_request_pay", (), {"api_calls": -1}),
        ("record_token_based_pay", (), {"tokens_in": True}),
        ("record_instant_pay", ("NaN",), {}),
        ("get_events", (), {"limit": 5000}),
        ("get_meter_stats", (), {"timeframe": "a fortnight"}),
        ("get_report", (), {"group_by": ["weather"]}),
        ("set_user_meter", ("-1",), {}),
        ("get_project", ("",), {}),
        ("set_price", ("m",), {"input": "-2", "output": "1"}),
    ]
    with backend.sync(project) as sync:
        expected = []
        for name, args, kwargs in bad_calls:
            with pytest.raises(AgentMeterValidationError) as raised:
                getattr(sync, name)(*args, **kwargs)
            expected.append((name, raised.value.field, str(raised.value)))

    async def scenario():
        found = []
        async with backend.connect(project) as client:
            for name, args, kwargs in bad_calls:
                with pytest.raises(AgentMeterValidationError) as raised:
                    await getattr(client, name)(*args, **kwargs)
                found.append((name, raised.value.field, str(raised.value)))
            with pytest.raises(TypeError):
                await client.record_event({"not": "an event"})
            stats = await client.get_meter_stats(timeframe="all")
        return found, stats

    found, stats = asyncio.run(scenario())
    assert found == expected
    assert stats.total_events == 0  # nothing was sent


def test_no_project_is_a_configuration_error_before_anything_is_sent(http_backend):
    async def scenario():
        async with AsyncAgentMeterClient(
            base_url=http_backend.server.url, api_key="am_proj_nothing"
        ) as client:
            with pytest.raises(AgentMeterConfigurationError, match="project_id is not set"):
                await client.get_meter_stats()

    asyncio.run(scenario())


def test_built_events_are_the_sync_builders(embedded_backend):
    project = embedded_backend.new_project()

    async def scenario():
        async with embedded_backend.connect(project, agent_id="b") as client:
            return (
                client.build_api_request_pay(2, "0.5"),
                client.build_token_based_pay(10, 20, "0.1", "0.1"),
                client.build_instant_pay("1"),
            )

    api, tokens, instant = asyncio.run(scenario())
    assert isinstance(api, APIRequestPayEvent)
    assert api.total_cost == D("1.0")
    assert isinstance(tokens, TokenBasedPayEvent)
    assert tokens.total_cost == D("3.0")
    assert isinstance(instant, InstantPayEvent)
    assert instant.agent_id == "b"


def test_close_is_safe_twice_and_the_tracker_is_flushed(backend, project):
    async def scenario():
        client = backend.connect(project)
        client.tracker.flush_interval = 60
        event_id = client.tracker.track_api_request_pay(1, "0.2", "closing")
        await client.aclose()
        await client.aclose()
        return event_id

    event_id = asyncio.run(scenario())
    with backend.sync(project) as reader:
        assert [event.id for event in reader.get_events(user_id="closing")] == [event_id]


def test_a_stale_price_table_is_read_off_the_loop(http_backend):
    project = http_backend.new_project()
    model = f"house-{uuid.uuid4().hex[:6]}"
    with http_backend.sync(project) as sync:
        sync.set_price(model, input="3", output="0")

    async def scenario():
        async with http_backend.connect(project) as client:
            book = client.price_book
            real_reader, readers = book.reader, []

            class Recording:
                def get_prices(self, project_id=None):
                    readers.append(threading.get_ident())
                    return real_reader.get_prices(project_id=project_id)

            book.reader = Recording()
            answer = await client.record_token_based_pay(1_000_000, 0, model=model)
            cached = await client.record_token_based_pay(1_000_000, 0, model=model)
            return answer, cached, readers, threading.get_ident()

    answer, cached, readers, loop_thread = asyncio.run(scenario())
    assert (answer.cost, cached.cost) == (D("3"), D("3"))
    assert len(readers) == 1  # read once, then cached
    assert readers[0] != loop_thread


def test_a_failover_transport_is_carried_on_worker_threads(http_backend):
    project = http_backend.new_project()
    key = project.api_key.get_secret_value()
    url = http_backend.server.url

    async def scenario():
        transport = FailoverTransport([url, url], key)
        async with AsyncAgentMeterClient(project_id=project.id, transport=transport) as client:
            assert isinstance(client.transport, ThreadedTransport)
            answers = await asyncio.gather(
                *(client.record_instant_pay("0.5", user_id="fo") for _ in range(20))
            )
            return answers, await client.get_user_meter("fo")

    answers, meter = asyncio.run(scenario())
    assert len({answer.event_id for answer in answers}) == 20
    assert meter.current_usage == D("10.0")


def test_summary_and_metadata_reports_answer_as_the_sync_client(backend, project):
    """Issue 20: the new reads are plans too, so both clients answer alike."""
    with backend.sync(project) as writer:
        for n in range(4):
            writer.record_api_request_pay(
                1, "0.25", user_id=f"u{n % 2}", metadata={"provider": ["x", "y"][n % 2]}
            )
        expected = (
            writer.get_usage_summary(),
            writer.get_report(granularity="month", group_by=["metadata.provider"]),
        )

    async def scenario():
        async with backend.connect(project) as client:
            return (
                await client.get_usage_summary(),
                await client.get_report(granularity="month", group_by=["metadata.provider"]),
            )

    summary, report = asyncio.run(scenario())
    assert (summary, report) == expected
    assert [row.user_id for row in summary.rows] == ["u0", "u1"]
    assert summary.totals.cost == D("1")
    assert {row.metadata["provider"]: row.cost for row in report} == {"x": D("0.5"), "y": D("0.5")}
