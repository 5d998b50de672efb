"""``agentmeter ledger check`` finds a rollup or spend total that differs from
the events, and ``--repair`` rebuilds them."""

from __future__ import annotations

import json
from decimal import Decimal
from pathlib import Path

from click.testing import CliRunner
from sqlalchemy import update

from agentmeter.cli.app import cli
from agentmeter.ledger import Ledger
from agentmeter.ledger.alert_schema import spend_totals
from agentmeter.ledger.rollup_schema import ROLLUPS
from agentmeter.models import InstantPayEvent


def make_ledger(path: Path) -> str:
    url = f"sqlite:///{path}"
    ledger = Ledger.open(url)
    ledger.ensure_project("p", "P")
    ledger.record_events(
        [
            InstantPayEvent(project_id="p", user_id=f"u{n % 3}", agent_id="a", amount=f"{n}.25")
            for n in range(12)
        ]
    )
    ledger.close()
    return url


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(cli, ["ledger", "check", *args])
    return result.exit_code, result.output


def test_a_consistent_ledger_checks_clean(tmp_path: Path) -> None:
    url = make_ledger(tmp_path / "l.db")
    code, output = run("--db", url)
    assert code == 0, output
    assert "match the events" in output
    code, output = run("--db", url, "--format", "json")
    assert json.loads(output)["differences"] == []


def test_a_tampered_rollup_and_spend_total_are_found_and_repaired(tmp_path: Path) -> None:
    url = make_ledger(tmp_path / "l.db")
    ledger = Ledger.open(url)
    with ledger.writing() as connection:
        connection.execute(update(ROLLUPS[2].table).values(cost=Decimal(0)))  # per day and user
        connection.execute(update(spend_totals).values(amount=Decimal(1)))
    ledger.close()
    code, output = run("--db", url)
    assert code == 1
    assert "usage_day_user" in output
    assert "spend_totals" in output
    assert "5 differ" in output  # three users, one day, one month
    code, output = run("--db", url, "--repair")
    assert code == 0, output
    assert "rebuilt from the events" in output
    assert run("--db", url)[0] == 0


def test_a_missing_ledger_is_not_created(tmp_path: Path) -> None:
    code, output = run("--db", f"sqlite:///{tmp_path / 'nothing.db'}")
    assert code == 2, output
    assert not (tmp_path / "nothing.db").exists()
