"""Keys on the live server: 401 without a valid key, 403 outside the key's project.

HTTP only: the embedded client has admin rights over its own file.
"""

from __future__ import annotations

from datetime import timedelta
from decimal import Decimal

import pytest
import requests

from agentmeter import AgentMeterClient
from agentmeter.errors import AuthenticationError, PermissionDeniedError
from agentmeter.models import InstantPayEvent

from .conftest import BASE_TIME


@pytest.fixture
def victim(http_backend):
    """Project A, with one event, a meter and a bill, and a client holding its key."""
    project = http_backend.new_project("victim")
    with http_backend.connect(project, agent_id="a1") as owner:
        owner.record_instant_pay(amount="1.25", user_id="u1")
        owner.set_user_meter(threshold_amount="10", user_id="u1")
        bill = owner.create_billing_record(
            period_start=BASE_TIME, period_end=BASE_TIME + timedelta(days=1), amount="2"
        )
        yield project, owner, bill


@pytest.fixture
def intruder(http_backend, victim):
    """A client with project B's key, aimed at project A."""
    project, _, _ = victim
    other = http_backend.new_project("intruder")
    with http_backend.server.client(
        other.api_key.get_secret_value(), project_id=project.id, agent_id="a1", retry_attempts=0
    ) as made:
        yield made


def every_project_call(project_id, bill_id):
    """Each read and write endpoint of a project, as (name, call)."""
    event = InstantPayEvent(project_id=project_id, agent_id="a1", user_id="u1", amount="5")
    start, end = BASE_TIME, BASE_TIME + timedelta(days=1)
    return [
        ("record_event", lambda c: c.record_event(event)),
        ("record_events", lambda c: c.record_events([event])),
        ("get_events", lambda c: c.get_events()),
        ("get_meter_stats", lambda c: c.get_meter_stats(timeframe="all")),
        ("get_report", lambda c: c.get_report(group_by=["user"])),
        ("get_user_meter", lambda c: c.get_user_meter("u1")),
        ("set_user_meter", lambda c: c.set_user_meter(threshold_amount="0", user_id="u1")),
        ("increment_user_meter", lambda c: c.increment_user_meter("100", user_id="u1")),
        ("reset_user_meter", lambda c: c.reset_user_meter(user_id="u1")),
        (
            "create_billing_record",
            lambda c: c.create_billing_record(period_start=start, period_end=end, amount="9"),
        ),
        ("list_billing_records", lambda c: c.list_billing_records()),
        ("update_billing_record", lambda c: c.update_billing_record(bill_id, status="void")),
        ("get_project", lambda c: c.get_project(project_id)),
    ]


def assert_untouched(owner, bill):
    stats = owner.get_meter_stats(timeframe="all")
    assert (stats.total_events, stats.total_cost) == (1, Decimal("1.25"))
    meter = owner.get_user_meter("u1")
    assert (meter.current_usage, meter.threshold_amount) == (Decimal("1.25"), Decimal("10"))
    assert owner.list_billing_records() == [bill]


def test_another_projects_key_gets_403_everywhere(victim, intruder):
    project, owner, bill = victim
    for name, call in every_project_call(project.id, bill.id):
        with pytest.raises(PermissionDeniedError) as caught:
            call(intruder)
        assert (caught.value.status_code, caught.value.code) == (403, "forbidden"), name
    assert_untouched(owner, bill)


def test_the_owner_may_do_all_of_it(victim):
    project, owner, bill = victim
    for _, call in every_project_call(project.id, bill.id):
        call(owner)


def test_a_project_key_may_not_manage_projects(http_backend, victim):
    project, owner, bill = victim
    for name, call in [
        ("create_project", lambda: owner.create_project("mine now")),
        ("update_project", lambda: owner.update_project(project.id, name="mine")),
        ("delete_project", lambda: owner.delete_project(project.id)),
    ]:
        with pytest.raises(PermissionDeniedError) as caught:
            call()
        assert caught.value.status_code == 403, name
    assert http_backend.admin.get_project(project.id).name == project.name
    assert_untouched(owner, bill)
    # Its own project it may read; the list shows it alone.
    assert owner.get_project(project.id).id == project.id
    assert [listed.id for listed in owner.list_projects()] == [project.id]


def test_a_project_key_fills_in_its_project(http_backend, victim):
    """A request without project_id is about the key's own project."""
    project, _, _ = victim
    with http_backend.server.client(project.api_key.get_secret_value(), retry_attempts=0) as keyed:
        answer = keyed.transport.request("GET", "/api/meter/stats", params={"timeframe": "all"})
    assert answer["total_cost"] == "1.25"


def test_a_bad_or_missing_key_gets_401(live_server, victim):
    project, owner, bill = victim
    calls = every_project_call(project.id, bill.id)
    for key in ("am_proj_not-a-real-key", "am_admin_not-a-real-key"):
        with live_server.client(key, project_id=project.id, agent_id="a1", retry_attempts=0) as bad:
            for name, call in [*calls, ("list_projects", lambda c: c.list_projects())]:
                with pytest.raises(AuthenticationError) as caught:
                    call(bad)
                assert (caught.value.status_code, caught.value.code) == (401, "unauthorized"), name
    with AgentMeterClient(
        base_url=live_server.url, project_id=project.id, agent_id="a1", retry_attempts=0
    ) as keyless:
        for name, call in calls:
            with pytest.raises(AuthenticationError):
                call(keyless)
            assert name
    assert_untouched(owner, bill)


@pytest.mark.parametrize(
    "header",
    [None, "", "Bearer", "Bearer ", "Basic dXNlcjpwYXNz", "Token am_proj_x", "bearer wrong"],
)
def test_raw_requests_without_a_valid_bearer_key_get_401(live_server, victim, header):
    project, _, _ = victim
    headers = {"Authorization": header} if header is not None else {}
    response = requests.get(
        f"{live_server.url}/api/meter/events",
        params={"project_id": project.id},
        headers=headers,
        timeout=10,
    )
    assert response.status_code == 401
    assert response.json()["error"]["code"] == "unauthorized"


def test_health_needs_no_key(live_server):
    response = requests.get(f"{live_server.url}/health", timeout=10)
    assert response.status_code == 200
    assert response.json()["status"] == "healthy"


def test_a_deleted_projects_key_stops_working(http_backend):
    project = http_backend.new_project("doomed")
    with http_backend.connect(project, agent_id="a1") as doomed:
        doomed.record_instant_pay(amount="1")
        http_backend.admin.delete_project(project.id)
        with pytest.raises(AuthenticationError):
            doomed.get_events()
