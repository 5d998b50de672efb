"""Issue 11, items 5-7: time buckets before 1970, events from the future,
event ids reused with other content or by another project, and writes to
projects that do not exist. Against the live servers (SQLite, PostgreSQL),
the embedded mode, and the ledger itself where a server would refuse the input.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterator
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import pytest
import requests
from click.testing import CliRunner
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmeter import AgentMeterClient
from agentmeter.cli.app import cli
from agentmeter.core.wire import ReportQuery
from agentmeter.errors import ConflictError, NotFoundError, UnprocessableEntityError
from agentmeter.ledger import Ledger
from agentmeter.ledger.api import ADMIN, LedgerAPI
from agentmeter.ledger.errors import WireError
from agentmeter.models import APIRequestPayEvent, InstantPayEvent
from agentmeter.testing import LiveServer

from .conftest import BASE_TIME

UTC = timezone.utc


def instant(project_id: str, at: datetime, amount: str = "1", **fields) -> InstantPayEvent:
    fields.setdefault("agent_id", "agent-1")
    fields.setdefault("user_id", "user-1")
    return InstantPayEvent(project_id=project_id, amount=amount, timestamp=at, **fields)


def buckets(moment: datetime) -> dict[str, str]:
    """The hour, day and month a moment belongs to, as the report labels them."""
    hour = moment.replace(minute=0, second=0, microsecond=0)
    return {
        "hour": hour.isoformat().replace("+00:00", "Z"),
        "day": moment.date().isoformat(),
        "month": f"{moment.year:04d}-{moment.month:02d}",
    }


def report_periods(rows) -> dict[str, int]:
    return {row.period: row.events for row in rows}


@pytest.fixture(params=["sqlite", "postgresql"])
def ledger(request, tmp_path) -> Iterator[Ledger]:
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path}/ledger.db"
    else:
        url = request.getfixturevalue("postgres_databases")("hardening")
    opened = Ledger.open(url)
    yield opened
    opened.close()


# ------------------------------------------------ item 5: time buckets

PAST_MOMENTS = [
    datetime(1, 1, 1, 0, 30, tzinfo=UTC),
    datetime(1, 3, 15, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 12, 31, 12, 30, tzinfo=UTC),
    datetime(1969, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
    datetime(1969, 12, 1, 0, 0, 0, 1, tzinfo=UTC),
    datetime(1970, 1, 1, tzinfo=UTC),
    datetime(1970, 1, 1, 0, 59, tzinfo=UTC),
]
FUTURE_MOMENTS = [
    datetime(2038, 1, 19, 3, 14, 8, tzinfo=UTC),
    datetime(9999, 12, 31, 23, 59, 59, 999999, tzinfo=UTC),
]


def expected_report(moments: list[datetime], granularity: str) -> dict[str, int]:
    counts: dict[str, int] = {}
    for moment in moments:
        label = buckets(moment)[granularity]
        counts[label] = counts.get(label, 0) + 1
    return counts


@pytest.mark.parametrize("granularity", ["hour", "day", "month"])
def test_events_before_1970_fall_in_their_own_period(client, granularity):
    events = [instant(client.project_id, moment) for moment in PAST_MOMENTS]
    assert client.record_events(events).accepted == len(events)

    rows = client.get_report(granularity=granularity)

    # 1969-12-31T12:30Z is in hour 12:00 and day 1969-12-31 (not 13:00, 1970-01-01).
    assert report_periods(rows) == expected_report(PAST_MOMENTS, granularity)


@pytest.mark.parametrize("granularity", ["hour", "day", "month"])
def test_every_year_from_1_to_9999_has_the_right_period(ledger, granularity):
    moments = PAST_MOMENTS + FUTURE_MOMENTS
    ledger.record_events([instant("p", moment) for moment in moments])

    rows = ledger.report(ReportQuery(project_id="p", granularity=granularity))

    assert report_periods(rows) == expected_report(moments, granularity)


@settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(moment=st.datetimes(min_value=datetime(1, 1, 1), max_value=datetime(9999, 12, 31)))
def test_any_moment_falls_in_the_hour_day_and_month_that_hold_it(moment):
    ledger = Ledger.open("sqlite://")
    try:
        ledger.record_events([instant("p", moment.replace(tzinfo=UTC))])
        for granularity, label in buckets(moment.replace(tzinfo=UTC)).items():
            [row] = ledger.report(ReportQuery(project_id="p", granularity=granularity))
            assert row.period == label
    finally:
        ledger.close()


# ------------------------------------------- item 5: events from the future


def test_an_event_far_in_the_future_is_refused_naming_timestamp(client):
    later = datetime.now(UTC) + timedelta(hours=1)

    with pytest.raises(UnprocessableEntityError) as caught:
        client.record_event(instant(client.project_id, later))

    assert caught.value.details[0]["field"] == "timestamp"
    assert "timestamp" in str(caught.value)
    assert client.get_meter_stats(timeframe="all").total_events == 0
    assert client.get_events() == []


def test_in_a_batch_only_the_future_event_is_rejected(client):
    now = datetime.now(UTC)
    future = instant(client.project_id, now + timedelta(days=400), "5")
    fine = instant(client.project_id, now - timedelta(minutes=1), "1")
    skewed = instant(client.project_id, now + timedelta(minutes=1), "2")  # within the skew

    result = client.record_events([future, fine, skewed])

    [rejected] = result.rejected
    assert (result.accepted, result.duplicates) == (2, 0)
    assert (rejected.index, rejected.id, rejected.error.code) == (
        0,
        future.id,
        "timestamp_in_future",
    )
    assert "timestamp" in rejected.error.message
    assert {event.id for event in client.get_events()} == {fine.id, skewed.id}


def test_relative_windows_end_now(ledger):
    now = datetime.now(UTC)
    ledger.record_events(
        [
            instant("p", now - timedelta(minutes=10), "1"),
            instant("p", now + timedelta(hours=2), "20"),  # e.g. stored before the check
            instant("p", datetime(9999, 1, 1, tzinfo=UTC), "300"),
        ]
    )

    for timeframe in ("1 hour", "24 hours", "7 days", "30 days", "all"):
        stats = ledger.stats("p", timeframe)
        assert (stats.total_events, stats.total_cost) == (1, Decimal("1")), timeframe


def test_the_skew_is_a_setting_of_the_api(ledger):
    strict = LedgerAPI(ledger, max_future_skew=timedelta(0))
    lenient = LedgerAPI(ledger, max_future_skew=None)
    body = instant("p", datetime(9999, 12, 31, tzinfo=UTC)).to_dict()
    ledger.ensure_project("p", "p")

    with pytest.raises(WireError) as caught:
        strict.record_event(ADMIN, body)
    answer = lenient.record_event(ADMIN, body)

    assert (caught.value.status, caught.value.details[0]["field"]) == (422, "timestamp")
    assert answer["duplicate"] is False
    with pytest.raises(ValueError, match="max_future_skew"):
        LedgerAPI(ledger, max_future_skew=timedelta(seconds=-1))


def test_serve_can_accept_any_time(tmp_path):
    url = f"sqlite:///{tmp_path}/ledger.db"
    with LiveServer(url, extra_args=("--max-future-skew", "off")) as server:
        project = server.client().create_project("far future")
        assert project.api_key is not None
        key = project.api_key.get_secret_value()
        with server.client(key, project_id=project.id, retry_attempts=0) as client:
            answer = client.record_event(instant(project.id, datetime(9999, 1, 1, tzinfo=UTC)))
            [row] = client.get_report(granularity="month")
            stats = client.get_meter_stats(timeframe="all")
    assert answer.duplicate is False
    assert (row.period, row.events) == ("9999-01", 1)
    assert stats.total_events == 0  # "all" ends now too


def test_serve_refuses_a_skew_that_is_not_seconds():
    result = CliRunner().invoke(cli, ["serve", "--max-future-skew", "soon"])
    assert result.exit_code == 2
    assert "--max-future-skew" in result.output


# -------------------------------------- item 6: ids reused, scoped per project

ORIGINAL = {
    "payment_type": "instant_pay",
    "agent_id": "agent-1",
    "user_id": "user-1",
    "timestamp": "2025-03-10T12:00:00Z",
    "amount": "0.5",
    "description": "report",
    "metadata": {"model": "gpt-4o", "run": {"n": 1, "tags": ["a", "b"]}},
}
CHANGES = [
    ({"agent_id": "agent-2"}, ["agent_id"]),
    ({"user_id": "user-2"}, ["user_id"]),
    ({"timestamp": "2025-03-10T12:00:01Z"}, ["timestamp"]),
    ({"amount": "0.51"}, ["amount"]),
    ({"description": "other"}, ["description"]),
    ({"metadata": {"model": "gpt-4o", "run": {"n": 2, "tags": ["a", "b"]}}}, ["metadata"]),
    ({"metadata": {"model": "gpt-4o", "run": {"n": True, "tags": ["a", "b"]}}}, ["metadata"]),
    ({"amount": "7", "user_id": "user-9"}, ["user_id", "amount"]),
    (
        {"payment_type": "api_request_pay", "api_calls": 1, "unit_price": "0.5"},
        ["payment_type", "api_calls", "unit_price", "amount", "description"],
    ),
]
SAME_CONTENT = [
    {"amount": "0.50"},  # money compares by value
    {"amount": 0.5},
    {"timestamp": "2025-03-10T14:00:00+02:00"},  # the same instant
    {"metadata": {"run": {"tags": ["a", "b"], "n": 1}, "model": "gpt-4o"}},  # key order
]


def body(client, event_id: str, **changes) -> dict:
    return {**ORIGINAL, "id": event_id, "project_id": client.project_id, **changes}


@pytest.mark.parametrize(("changes", "fields"), CHANGES)
def test_an_id_resent_with_other_content_is_a_conflict_naming_the_fields(client, changes, fields):
    event_id = str(uuid.uuid4())
    client.record_event(InstantPayEvent(**body(client, event_id)))
    changed = body(client, event_id, **changes)
    if changed["payment_type"] == "api_request_pay":
        changed = {k: v for k, v in changed.items() if k not in ("amount", "description")}
    event = APIRequestPayEvent(**changed) if "api_calls" in changed else InstantPayEvent(**changed)

    with pytest.raises(ConflictError) as caught:
        client.record_event(event)
    batch = client.record_events([event])

    assert caught.value.code == "idempotency_conflict"
    assert [detail["field"] for detail in caught.value.details] == fields
    assert f"({', '.join(fields)} differ)" in str(caught.value)
    [rejected] = batch.rejected
    assert (batch.accepted, batch.duplicates, rejected.error.code) == (
        0,
        0,
        "idempotency_conflict",
    )
    stats = client.get_meter_stats(timeframe="all")
    assert (stats.total_events, stats.total_cost) == (1, Decimal("0.5"))
    assert client.get_user_meter("user-1").current_usage == Decimal("0.5")


@pytest.mark.parametrize("changes", SAME_CONTENT)
def test_the_same_content_written_differently_is_a_duplicate(client, changes):
    event_id = str(uuid.uuid4())
    first = client.record_event(InstantPayEvent(**body(client, event_id)))

    again = client.record_event(InstantPayEvent(**body(client, event_id, **changes)))

    assert (first.duplicate, again.duplicate) == (False, True)
    assert (again.cost, again.timestamp) == (Decimal("0.5"), first.timestamp)


def test_a_resent_event_whose_time_the_ledger_filled_is_a_duplicate(ledger):
    """Regression: a sender that leaves ``timestamp`` out (the ledger fills in
    now) and retries got 409 "timestamp differs" on the retry."""
    project, _key = ledger.create_project("no clock", None, None)
    untimed = {**ORIGINAL, "id": "retry-1", "project_id": project.id}
    del untimed["timestamp"]

    first = ledger.record_events([InstantPayEvent(**untimed)])
    again = ledger.record_events([InstantPayEvent(**untimed)])
    timed = ledger.record_events(
        [InstantPayEvent(**untimed, timestamp=first[0].timestamp + timedelta(seconds=1))]
    )

    assert again[0].duplicate
    assert again[0].conflicts == ()
    assert again[0].timestamp == first[0].timestamp
    assert timed[0].conflicts == ("timestamp",)  # a time the sender gives is compared


def test_a_raw_http_retry_without_a_time_is_a_duplicate(http_backend):
    project = http_backend.new_project()
    key = project.api_key.get_secret_value()
    untimed = {**ORIGINAL, "id": str(uuid.uuid4()), "project_id": project.id}
    del untimed["timestamp"]
    answers = [
        requests.post(
            f"{http_backend.server.url}/api/meter/event",
            json=untimed,
            headers={"Authorization": f"Bearer {key}"},
            timeout=10,
        )
        for _ in range(2)
    ]
    assert [answer.status_code for answer in answers] == [201, 201], answers[1].text
    assert [answer.json()["duplicate"] for answer in answers] == [False, True]


def test_two_projects_may_use_one_id_in_one_ledger(ledger):
    shared = "01J00000000000000000000000"
    stored = ledger.record_events(
        [
            instant("a", BASE_TIME, "1", id=shared),
            instant("b", BASE_TIME, "2", id=shared),
            instant("b", BASE_TIME, "2", id=shared),
        ]
    )

    assert [(s.project_id, s.cost, s.duplicate) for s in stored] == [
        ("a", Decimal("1"), False),
        ("b", Decimal("2"), False),
        ("b", Decimal("2"), True),
    ]
    assert ledger.stats("a", "all").total_cost == Decimal("1")
    assert ledger.stats("b", "all").total_cost == Decimal("2")


# ---------------------------------- item 7: writes to a project that does not exist


@pytest.fixture(params=["http", "postgres"])
def server(request) -> LiveServer:
    return request.getfixturevalue("live_server" if request.param == "http" else "postgres_server")


@pytest.fixture
def nowhere(server) -> Iterator[AgentMeterClient]:
    """The admin key, aimed at a project nobody created."""
    missing = f"missing-{uuid.uuid4().hex[:8]}"
    with server.client(project_id=missing, agent_id="agent-1", retry_attempts=0) as admin:
        yield admin


def test_the_admin_cannot_record_events_for_a_missing_project(nowhere):
    event = instant(nowhere.project_id, BASE_TIME)

    with pytest.raises(NotFoundError) as caught:
        nowhere.record_event(event)
    batch = nowhere.record_events([event, instant(nowhere.project_id, BASE_TIME)])

    assert nowhere.project_id in str(caught.value)
    assert caught.value.details == [{"field": "project_id", "message": "no such project"}]
    assert batch.accepted == 0
    assert [(r.index, r.error.code) for r in batch.rejected] == [(0, "not_found"), (1, "not_found")]
    assert nowhere.get_events() == []


@pytest.mark.parametrize(
    "write",
    [
        lambda c: c.set_user_meter(threshold_amount="5", user_id="u"),
        lambda c: c.increment_user_meter(amount="5", user_id="u"),
        lambda c: c.reset_user_meter(user_id="u"),
        lambda c: c.create_billing_record(
            period_start=BASE_TIME, period_end=BASE_TIME + timedelta(days=1), amount="1"
        ),
    ],
    ids=["set", "increment", "reset", "billing"],
)
def test_the_admin_cannot_write_meters_or_bills_of_a_missing_project(nowhere, write):
    with pytest.raises(NotFoundError) as caught:
        write(nowhere)

    assert repr(nowhere.project_id) in str(caught.value)
    meter = nowhere.get_user_meter("u")  # the zero meter: nothing was stored
    assert (meter.threshold_amount, meter.current_usage, meter.updated_at) == (None, 0, None)
    assert nowhere.list_billing_records() == []


def test_a_deleted_project_takes_no_more_events(server):
    with server.client(retry_attempts=0) as admin:
        project = admin.create_project("short-lived")
        admin.record_event(instant(project.id, BASE_TIME))  # its id is now known
        admin.delete_project(project.id)

        with pytest.raises(NotFoundError):
            admin.record_event(instant(project.id, BASE_TIME))


def test_the_embedded_mode_creates_a_project_on_first_use(embedded_url):
    project_id = f"quick-start-{uuid.uuid4().hex[:8]}"
    with AgentMeterClient(base_url=embedded_url, project_id=project_id, agent_id="a") as client:
        answer = client.record_instant_pay(amount="1", user_id="u")
        client.set_user_meter(threshold_amount="5", user_id="u")

        assert answer.duplicate is False
        assert project_id in {project.id for project in client.list_projects()}


@pytest.mark.parametrize(
    ("ahead", "written", "accepted"),
    [
        (timedelta(hours=9), "naive", True),  # 0.2 in Tokyo: naive local time, read as UTC
        (timedelta(hours=13, minutes=59), "naive", True),
        (timedelta(hours=15), "naive", False),
        (timedelta(hours=9), "offset", False),
        (timedelta(minutes=4), "offset", True),
    ],
)
def test_a_naive_time_may_be_local_time_up_to_14_hours_ahead(ledger, ahead, written, accepted):
    ledger.ensure_project("p", "p")
    moment = datetime.now(UTC) + ahead
    text = moment.replace(tzinfo=None).isoformat() if written == "naive" else moment.isoformat()
    body = {**instant("p", BASE_TIME).to_dict(), "timestamp": text}
    api = LedgerAPI(ledger)

    if accepted:
        assert api.record_event(ADMIN, body)["duplicate"] is False
        assert api.record_batch(ADMIN, {"events": [body]})["duplicates"] == 1
    else:
        with pytest.raises(WireError) as caught:
            api.record_event(ADMIN, body)
        batch = api.record_batch(ADMIN, {"events": [body]})
        [detail] = caught.value.details
        assert (detail["field"], detail["message"]) == ("timestamp", "in the future")
        latest = datetime.fromisoformat(detail["latest_accepted"].replace("Z", "+00:00"))
        assert abs(latest - datetime.now(UTC) - timedelta(minutes=5)) < timedelta(minutes=1)
        assert [item["error"]["code"] for item in batch["rejected"]] == ["timestamp_in_future"]
