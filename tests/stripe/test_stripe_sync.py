"""``agentmeter stripe sync`` through the real ``stripe`` package against a fake Stripe API."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from datetime import datetime, timedelta
from decimal import ROUND_HALF_EVEN, Decimal
from typing import Any

import pytest
from sqlalchemy import func, select

from agentmeter.ledger import Ledger
from agentmeter.ledger.stripe_schema import stripe_sync_log
from agentmeter.models import APIRequestPayEvent, InstantPayEvent, TokenBasedPayEvent

from .conftest import STRIPE_KEY, FakeStripe, day, run

pytestmark = pytest.mark.usefixtures("fake_stripe")


def seed(url: str, today: datetime) -> None:
    """alice (mapped), bob (metadata), carol (neither): two days of usage each."""
    ledger = Ledger.open(url)
    ledger.ensure_project("p", "P")
    events: list[Any] = []
    for back in (2, 1):
        moment = today - timedelta(days=back) + timedelta(hours=3)
        for user in ("alice", "bob", "carol"):
            common = {"project_id": "p", "agent_id": "a", "user_id": user, "timestamp": moment}
            metadata = {"stripe_customer_id": "cus_Bob42"} if user == "bob" else {}
            events.append(InstantPayEvent(amount="0.125", metadata=metadata, **common))
            events.append(InstantPayEvent(amount="1.0100001", **common))
            events.append(APIRequestPayEvent(api_calls=3, unit_price="0.001", **common))
            events.append(
                TokenBasedPayEvent(
                    tokens_in=1000,
                    tokens_out=250,
                    input_token_price="0.000001",
                    output_token_price="0.000002",
                    **common,
                )
            )
    ledger.record_events(events)
    ledger.map_stripe_customer("p", "alice", "cus_Alice1")
    ledger.close()


def sync(url: str, today: datetime, *extra: str, env: dict[str, str] | None = None) -> Any:
    since = day(today - timedelta(days=2))
    args = ["stripe", "sync", "--db", url, "--project-id", "p", "--since", since]
    return run(*args, "--until", day(today), "--format", "json", *extra, env=env)


def logged(url: str) -> int:
    ledger = Ledger.open(url)
    try:
        with ledger.reading() as connection:
            count = select(func.count()).select_from(stripe_sync_log)
            return int(connection.execute(count).scalar_one())
    finally:
        ledger.close()


def no_key(result: Any) -> None:
    assert STRIPE_KEY not in result.stdout + result.stderr


def test_dry_run_prints_the_payloads_and_sends_nothing(
    fake_stripe: FakeStripe, ledger_url: str, today: datetime
) -> None:
    seed(ledger_url, today)
    result = sync(ledger_url, today)
    assert result.exit_code == 0, result.stderr
    document = json.loads(result.stdout)
    assert document["dry_run"] is True
    assert document["counts"] == {"to send": 4, "no Stripe customer": 2}
    request = next(row["request"] for row in document["rows"] if row["user_id"] == "alice")
    assert request["event_name"] == "agentmeter_cost"
    assert request["payload"] == {"stripe_customer_id": "cus_Alice1", "value": "114"}
    assert request["identifier"].startswith("am_")
    assert fake_stripe.requests == []
    assert logged(ledger_url) == 0
    table = run("stripe", "sync", "--db", ledger_url, "--project-id", "p",
                "--since", day(today - timedelta(days=2)), "--until", day(today))  # fmt: skip
    assert "dry run" in table.stdout
    assert "no Stripe customer for carol" in table.stdout
    assert fake_stripe.requests == []


def test_commit_sends_form_encoded_meter_events_and_a_rerun_sends_nothing(
    fake_stripe: FakeStripe, any_ledger_url: str, today: datetime
) -> None:
    seed(any_ledger_url, today)
    first = sync(any_ledger_url, today, "--commit")
    assert first.exit_code == 0, first.stderr
    no_key(first)
    assert len(fake_stripe.requests) == 4
    for request in fake_stripe.requests:
        assert request.path == "/v1/billing/meter_events"
        assert request.headers["Authorization"] == f"Bearer {STRIPE_KEY}"
        assert request.headers["Content-Type"] == "application/x-www-form-urlencoded"
        assert set(request.form) == {
            "event_name",
            "identifier",
            "timestamp",
            "payload[stripe_customer_id]",
            "payload[value]",
        }
    by_customer = sorted(
        (form["payload[stripe_customer_id]"], int(form["timestamp"])) for form in fake_stripe.forms
    )
    last_seconds = [int((today - timedelta(days=back)).timestamp()) - 1 for back in (1, 0)]
    assert by_customer == [
        ("cus_Alice1", last_seconds[0]),
        ("cus_Alice1", last_seconds[1]),
        ("cus_Bob42", last_seconds[0]),
        ("cus_Bob42", last_seconds[1]),
    ]
    # 0.125 + 1.0100001 + 0.003 + 0.0015 = 1.1395001 -> 114 cents, once per user and day
    assert {form["payload[value]"] for form in fake_stripe.forms} == {"114"}
    identifiers = {form["identifier"] for form in fake_stripe.forms}
    assert len(identifiers) == 4
    assert logged(any_ledger_url) == 4
    rows = json.loads(first.stdout)["rows"]
    assert {row["stripe_request_id"] for row in rows if row["status"] == "sent"} >= {"req_fake0001"}

    second = sync(any_ledger_url, today, "--commit")
    assert second.exit_code == 0, second.stderr
    assert len(fake_stripe.requests) == 4  # nothing sent again
    assert json.loads(second.stdout)["counts"] == {"already synced": 4, "no Stripe customer": 2}

    forced = sync(any_ledger_url, today, "--commit", "--force")
    assert forced.exit_code == 0, forced.stderr
    resent = {form["identifier"] for form in fake_stripe.forms[4:]}
    assert resent == identifiers  # the same identifiers: Stripe can tell they are the same
    assert logged(any_ledger_url) == 4


def test_values_equal_the_report_for_every_value_kind(any_ledger_url: str, today: datetime) -> None:
    seed(any_ledger_url, today)
    since, until = day(today - timedelta(days=2)), day(today)
    report = run("report", "--db", any_ledger_url, "--project-id", "p", "--since", since,
                 "--until", until, "--group-by", "user", "--format", "json")  # fmt: skip
    assert report.exit_code == 0, report.stderr
    expected: dict[str, dict[tuple[str, str], int]] = {"cost": {}, "tokens": {}, "api_calls": {}}
    for row in json.loads(report.stdout)["rows"]:
        key = (row["user_id"], row["period"])
        cost = Decimal(row["cost"]).quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
        expected["cost"][key] = int(cost * 100)
        expected["tokens"][key] = row["tokens_in"] + row["tokens_out"]
        expected["api_calls"][key] = row["api_calls"]
    for kind, values in expected.items():
        result = sync(any_ledger_url, today, "--value", kind)
        assert result.exit_code == 0, result.stderr
        document = json.loads(result.stdout)
        assert document["event_name"] == f"agentmeter_{kind}"
        got = {(row["user_id"], row["period"]): row["value"] for row in document["rows"]}
        assert got == values


@pytest.mark.parametrize(("status", "should_retry"), [(500, None), (429, True), (409, None)])
def test_a_retryable_failure_is_retried_by_the_package(
    fake_stripe: FakeStripe, ledger_url: str, today: datetime, status: int, should_retry: Any
) -> None:
    seed(ledger_url, today)
    fake_stripe.fail(status, times=1, should_retry=should_retry)
    result = sync(ledger_url, today, "--commit", "--retries", "2")
    assert result.exit_code == 0, result.stderr
    assert len(fake_stripe.requests) == 5  # one failed try, retried, then three more
    first, retry = fake_stripe.requests[:2]
    assert first.form == retry.form
    assert first.headers["Idempotency-Key"] == retry.headers["Idempotency-Key"]
    assert logged(ledger_url) == 4


def test_a_persistent_failure_is_reported_and_not_logged(
    fake_stripe: FakeStripe, any_ledger_url: str, today: datetime
) -> None:
    seed(any_ledger_url, today)
    fake_stripe.fail(500, times=2)  # the first event's try and its one retry
    result = sync(any_ledger_url, today, "--commit", "--retries", "1")
    assert result.exit_code == 1
    no_key(result)
    rows = json.loads(result.stdout)["rows"]
    failed = [row for row in rows if row["status"] == "failed"]
    assert len(failed) == 1
    assert "500" in failed[0]["note"]
    assert "fake failure 500" in failed[0]["note"]
    assert logged(any_ledger_url) == 3
    # The next run sends just that one, under the same identifier.
    again = sync(any_ledger_url, today, "--commit")
    assert again.exit_code == 0, again.stderr
    assert fake_stripe.forms[-1]["identifier"] == failed[0]["identifier"]
    assert logged(any_ledger_url) == 4


def test_a_plain_429_is_not_retried_and_is_reported(
    fake_stripe: FakeStripe, ledger_url: str, today: datetime
) -> None:
    seed(ledger_url, today)
    fake_stripe.fail(429, times=1)  # no Stripe-Should-Retry: the package leaves it be
    result = sync(ledger_url, today, "--commit")
    assert result.exit_code == 1
    failed = [row for row in json.loads(result.stdout)["rows"] if row["status"] == "failed"]
    assert len(failed) == 1
    assert "429 rate_limit" in failed[0]["note"]
    assert len(fake_stripe.requests) == 4
    assert logged(ledger_url) == 3


def test_a_refused_key_stops_the_run_and_is_never_shown(
    fake_stripe: FakeStripe, ledger_url: str, today: datetime
) -> None:
    seed(ledger_url, today)
    fake_stripe.fail(401, times=None)
    result = sync(ledger_url, today, "--commit")
    assert result.exit_code == 1
    no_key(result)
    document = json.loads(result.stdout)
    assert document["counts"] == {"failed": 4, "no Stripe customer": 2}
    assert len(fake_stripe.requests) == 1  # the rest were not even tried
    assert logged(ledger_url) == 0
    table = run("stripe", "sync", "--db", ledger_url, "--project-id", "p", "--commit",
                "--since", day(today - timedelta(days=2)), "--until", day(today))  # fmt: skip
    assert "Stripe refused the key" in table.stdout
    no_key(table)


def test_commit_without_a_key_is_a_usage_error(ledger_url: str, today: datetime) -> None:
    seed(ledger_url, today)
    result = sync(ledger_url, today, "--commit", env={"STRIPE_API_KEY": ""})
    assert result.exit_code == 2
    assert "STRIPE_API_KEY" in result.stderr


def test_a_key_of_another_kind_is_refused_unshown(ledger_url: str, today: datetime) -> None:
    seed(ledger_url, today)
    key = "pk_live_notasecretkeybutpublishable000"
    result = sync(ledger_url, today, "--commit", env={"STRIPE_API_KEY": key})
    assert result.exit_code == 2
    assert key not in result.stdout + result.stderr


def test_the_map_beats_metadata_and_unmapped_users_are_listed(
    fake_stripe: FakeStripe, ledger_url: str, today: datetime
) -> None:
    seed(ledger_url, today)
    assert run("stripe", "map", "bob", "cus_BobMapped", "--db", ledger_url,
               "--project-id", "p").exit_code == 0  # fmt: skip
    rows = json.loads(sync(ledger_url, today).stdout)["rows"]
    customers = {row["user_id"]: row["customer_id"] for row in rows}
    assert customers == {"alice": "cus_Alice1", "bob": "cus_BobMapped", "carol": None}
    listing = run("stripe", "mappings", "--db", ledger_url, "--project-id", "p", "--format", "json")
    assert json.loads(listing.stdout)["customers"] == {
        "alice": "cus_Alice1",
        "bob": "cus_BobMapped",
    }
    assert run("stripe", "unmap", "bob", "--db", ledger_url, "--project-id", "p").exit_code == 0
    rows = json.loads(sync(ledger_url, today).stdout)["rows"]
    assert {row["customer_id"] for row in rows if row["user_id"] == "bob"} == {"cus_Bob42"}
    missing = run("stripe", "unmap", "bob", "--db", ledger_url, "--project-id", "p")
    assert missing.exit_code == 1
    bad = run("stripe", "map", "bob", "acct_123", "--db", ledger_url, "--project-id", "p")
    assert bad.exit_code == 2
    assert "not a Stripe customer id" in bad.stderr


def test_open_old_and_partial_periods_are_not_sent(
    fake_stripe: FakeStripe, ledger_url: str, today: datetime
) -> None:
    seed(ledger_url, today)
    ledger = Ledger.open(ledger_url)
    old = today - timedelta(days=40) + timedelta(hours=1)
    ledger.record_events(
        [InstantPayEvent(project_id="p", agent_id="a", user_id="alice", amount="2", timestamp=old)]
    )
    ledger.close()
    since = (today - timedelta(days=41)).isoformat()
    until = (today + timedelta(days=1)).isoformat()
    result = run("stripe", "sync", "--db", ledger_url, "--project-id", "p", "--since", since,
                 "--until", until, "--format", "json", "--commit")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    counts = json.loads(result.stdout)["counts"]
    assert counts["too old for Stripe"] == 1
    assert counts["sent"] == 4
    # Today (not over) has no usage here; a period not over is listed when it has some.
    ledger = Ledger.open(ledger_url)
    now = InstantPayEvent(project_id="p", agent_id="a", user_id="alice", amount=2, timestamp=today)
    ledger.record_events([now])
    ledger.close()
    result = run("stripe", "sync", "--db", ledger_url, "--project-id", "p", "--since", since,
                 "--until", until, "--format", "json")  # fmt: skip
    assert json.loads(result.stdout)["counts"]["period not over"] == 1
    # --since in the middle of a day: that partial day is left out.
    mid_day = (today - timedelta(hours=30)).isoformat()
    partial = run("stripe", "sync", "--db", ledger_url, "--project-id", "p", "--format", "json",
                  "--since", mid_day, "--until", day(today))  # fmt: skip
    assert json.loads(partial.stdout)["start"] == day(today - timedelta(days=1)) + "T00:00:00Z"


def test_a_month_overlapping_synced_days_is_never_sent(
    fake_stripe: FakeStripe, any_ledger_url: str, today: datetime
) -> None:
    seed(any_ledger_url, today)
    assert sync(any_ledger_url, today, "--commit").exit_code == 0
    sent = len(fake_stripe.requests)
    month_start = (today - timedelta(days=2)).replace(day=1)
    next_month = (month_start + timedelta(days=32)).replace(day=1)
    result = run("stripe", "sync", "--db", any_ledger_url, "--project-id", "p", "--granularity",
                 "month", "--since", day(month_start), "--until", day(next_month),
                 "--format", "json", "--commit", "--force")  # fmt: skip
    assert result.exit_code == 0, result.stderr
    statuses = {row["status"] for row in json.loads(result.stdout)["rows"]}
    assert "sent" not in statuses
    assert len(fake_stripe.requests) == sent


def test_the_table_shows_the_key_nowhere_and_a_test_key_keeps_its_own_log(
    fake_stripe: FakeStripe, ledger_url: str, today: datetime
) -> None:
    seed(ledger_url, today)
    assert sync(ledger_url, today, "--commit").exit_code == 0
    live = sync(ledger_url, today, env={"STRIPE_API_KEY": "sk_live_other000000000000000"})
    # What test mode got is no reason to skip anything in live mode.
    assert json.loads(live.stdout)["counts"]["to send"] == 4
    no_key(live)


def test_a_real_process_reads_the_key_and_base_from_its_environment(
    fake_stripe: FakeStripe, ledger_url: str, today: datetime
) -> None:
    seed(ledger_url, today)
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
    env |= {"STRIPE_API_KEY": STRIPE_KEY, "AGENTMETER_STRIPE_API_BASE": fake_stripe.url}
    since, until = day(today - timedelta(days=2)), day(today)
    done = subprocess.run(
        [sys.executable, "-m", "agentmeter.cli", "stripe", "sync", "--db", ledger_url,
         "--project-id", "p", "--since", since, "--until", until, "--commit"],
        capture_output=True, text=True, env=env, timeout=120, check=False,
    )  # fmt: skip
    assert done.returncode == 0, done.stderr
    assert "4 sent to Stripe (test mode)" in done.stdout
    assert STRIPE_KEY not in done.stdout + done.stderr
    assert len(fake_stripe.requests) == 4
