"""``record``, ``meter``, ``billing`` and ``projects``: changing the ledger from a shell."""

from __future__ import annotations

import csv
import io
import json
from datetime import datetime, timezone
from decimal import ROUND_HALF_EVEN, Decimal

import pytest


def fields(stdout):
    return dict(line.split(": ", 1) for line in stdout.splitlines())


def test_record_api_prints_id_and_exact_cost(am, target):
    done = am(
        "record", "api", *target.flags, "--user", "alice", "--agent", "search",
        "--api-calls", "3", "--unit-price", "0.1",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    printed = fields(done.stdout)
    assert printed["cost"] == "0.3"  # exact, not 0.30000000000000004
    [event] = target.client.get_events(user_id="alice")
    assert event.id == printed["event id"]
    assert event.agent_id == "search"
    assert event.total_cost == Decimal("0.3")


def test_record_tokens_with_metadata_and_time(am, target):
    done = am(
        "record", "tokens", *target.flags, "--user", "bob", "--tokens-in", "1200",
        "--tokens-out", "340", "--input-token-price", "0.000003", "--output-token-price",
        "0.000015", "-m", "model=gpt-4o", "--at", "2025-02-03T04:05:06Z",
    )  # fmt: skip
    assert done.exit_code == 0, done.stderr
    assert Decimal(fields(done.stdout)["cost"]) == Decimal("0.00870")
    [event] = target.client.get_events(user_id="bob")
    assert event.metadata == {"model": "gpt-4o"}
    assert event.timestamp == datetime(2025, 2, 3, 4, 5, 6, tzinfo=timezone.utc)
    report = am("report", *target.flags, "--group-by", "model", "--format", "csv")
    assert report.stdout.splitlines()[1] == "2025-02-03,gpt-4o,1,0,1200,340,0.008700"


def test_record_instant_twice_with_one_id_charges_once(am, target):
    # Updated for issue 11: an id sent again must carry the same content, its time
    # included, so the rerun names the time with --at (a rerun at another time is
    # an idempotency conflict: see the next test).
    args = ["record", "instant", *target.flags, "--user", "carol", "--amount", "4.99",
            "--description", "PDF export", "--id", "nightly-2025-01-31-carol",
            "--at", "2025-01-31"]  # fmt: skip
    first = am(*args)
    again = am(*args, "--format", "json")
    assert first.exit_code == again.exit_code == 0, first.stderr + again.stderr
    assert fields(first.stdout) == {"event id": "nightly-2025-01-31-carol", "cost": "4.99"}
    answer = json.loads(again.stdout)
    assert answer["duplicate"] is True
    assert answer["cost"] == "4.99"
    assert len(target.client.get_events(user_id="carol")) == 1
    assert target.client.get_user_meter("carol").current_usage == Decimal("4.99")


def test_record_an_id_again_with_other_content_is_refused(am, target):
    args = ["record", "instant", *target.flags, "--user", "dave", "--id", "order-77",
            "--at", "2025-01-31"]  # fmt: skip
    first = am(*args, "--amount", "4.99")
    again = am(*args, "--amount", "5.99")
    assert first.exit_code == 0, first.stderr
    assert again.exit_code == 1
    assert "idempotency_conflict" in again.stderr
    assert "amount differ" in again.stderr
    assert target.client.get_user_meter("dave").current_usage == Decimal("4.99")


@pytest.mark.parametrize(
    "args",
    [
        ["api", "--unit-price", "abc"],
        ["api", "--unit-price", "-1"],
        ["api", "--api-calls", "1"],  # no price: never a silent default price
        ["api", "--unit-price", "0.1", "--api-calls", "-2"],
        ["tokens", "--tokens-in", "5", "--input-token-price", "0.1"],
        ["instant", "--amount", "NaN"],
        ["instant", "--amount", "1", "--metadata", "novalue"],
        ["instant", "--amount", "1", "--id", "has spaces"],
        ["instant", "--amount", "1", "--at", "whenever"],
    ],
)
def test_record_usage_errors(am, target, error_line, args):
    done = am("record", *args, *target.flags)
    assert done.exit_code == 2, done.stdout
    error_line(done)
    assert target.client.get_events() == []


def test_meter_set_increment_get_reset(am, target):
    def meter(*args):
        done = am("meter", *args, *target.flags, "--user", "dave", "--format", "json")
        assert done.exit_code == 0, done.stderr
        return json.loads(done.stdout)

    assert meter("set", "--threshold", "10.005")["threshold_amount"] == "10.005"
    after = meter("increment", "--amount", "2.5")
    assert after["current_usage"] == "2.5"
    assert after["remaining_budget"] == "7.505"
    assert meter("get")["usage_percentage"] == "24.99"
    reset = meter("reset")
    assert Decimal(reset["current_usage"]) == 0
    assert reset["last_reset_at"] is not None


def test_meter_table(am, target):
    am("meter", "set", *target.flags, "--user", "erin", "--threshold", "1234.5")
    done = am("meter", "get", *target.flags, "--user", "erin")
    assert done.exit_code == 0, done.stderr
    assert "1,234.5" in done.stdout
    assert "Remaining" in done.stdout


@pytest.mark.parametrize(
    "args",
    [
        ["get"],  # --user is required
        ["set", "--user", "u"],
        ["set", "--user", "u", "--threshold", "lots"],
        ["increment", "--user", "u", "--amount", "-1"],
        ["explode", "--user", "u"],
    ],
)
def test_meter_usage_errors(am, target, error_line, args):
    done = am("meter", *args, *target.flags)
    assert done.exit_code == 2
    error_line(done)


def test_billing_create_sums_usage_list_and_pay(am, target):
    for amount, at in (("1.005", "2025-01-10"), ("2.0", "2025-01-20"), ("9", "2025-02-02")):
        recorded = am("record", "instant", *target.flags, "--amount", amount, "--at", at)
        assert recorded.exit_code == 0, recorded.stderr
    created = am(
        "billing", "create", *target.flags, "--since", "2025-01-01", "--until", "2025-02-01",
        "--format", "json",
    )  # fmt: skip
    assert created.exit_code == 0, created.stderr
    record = json.loads(created.stdout)
    expected = Decimal("3.005").quantize(Decimal("0.01"), rounding=ROUND_HALF_EVEN)
    assert Decimal(record["amount"]) == expected == Decimal("3.00")  # half-even, once
    assert record["status"] == "pending"

    fixed = am(
        "billing", "create", *target.flags, "--since", "2025-02-01", "--until", "2025-03-01",
        "--amount", "120.50",
    )  # fmt: skip
    assert fixed.exit_code == 0, fixed.stderr
    assert " 120.5 " in fixed.stdout  # shown normalized (issue 11, item 13)

    paid = am("billing", "update", record["id"], *target.flags, "--status", "paid")
    assert paid.exit_code == 0, paid.stderr
    assert "paid" in paid.stdout

    listed = am("billing", "list", *target.flags, "--format", "csv")
    rows = {row["id"]: row for row in csv.DictReader(io.StringIO(listed.stdout))}
    assert rows[record["id"]]["status"] == "paid"
    assert sorted(Decimal(row["amount"]) for row in rows.values()) == [
        Decimal("3.00"), Decimal("120.50")
    ]  # fmt: skip
    only_paid = am("billing", "list", *target.flags, "--status", "paid", "--format", "json")
    assert [r["id"] for r in json.loads(only_paid.stdout)["billing_records"]] == [record["id"]]
    table = am("billing", "list", *target.flags)
    assert "2 billing records" in table.stdout


def test_billing_errors(am, target, error_line):
    flags = target.flags
    backwards = am("billing", "create", *flags, "--since", "2025-02-01", "--until", "2025-01-01")
    assert backwards.exit_code == 2
    error_line(backwards)
    missing = am("billing", "create", *flags, "--since", "2025-02-01")
    assert missing.exit_code == 2
    nothing = am("billing", "update", "bill_x", *flags)
    assert nothing.exit_code == 2
    assert "--status or --amount" in error_line(nothing)
    unknown = am("billing", "update", "bill_nope", *flags, "--status", "paid")
    assert unknown.exit_code == 1
    assert "404" in error_line(unknown)
    bad_status = am("billing", "update", "bill_x", *flags, "--status", "forgiven")
    assert bad_status.exit_code == 2


def test_projects_create_and_list(am, live_server, embedded_url, unique_id):
    for flags in (
        ["--base-url", live_server.url, "--api-key", live_server.admin_key],
        ["--db", embedded_url],
    ):
        created = am("projects", "create", "CLI test", "--id", f"proj_{unique_id}", *flags)
        assert created.exit_code == 0, created.stderr
        assert created.stdout.startswith(f"project id: proj_{unique_id}")
        listed = am("projects", "list", *flags)
        assert f"proj_{unique_id}\tCLI test\t" in listed.stdout.splitlines()
        assert live_server.admin_key not in listed.stdout + listed.stderr


@pytest.fixture
def unique_id():
    import uuid

    return uuid.uuid4().hex[:10]
