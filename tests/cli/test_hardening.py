"""The CLI as a new user finds it (issue 11, items 9, 10, 12, 13, 14, 15)."""

from __future__ import annotations

import json
import re
import socket
import sqlite3
from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import pytest

from agentmeter import AgentMeterClient
from agentmeter.errors import AgentMeterConfigurationError
from agentmeter.ledger import Ledger
from agentmeter.models import APIRequestPayEvent, InstantPayEvent

MARKUP_IDS = ["[/bold]x", "[admin]", "[red]al[/red]", "[link=http://e.test]u"]


def row_of(text: str, label: str) -> str:
    """The value on the ``label`` line of a key/value table."""
    for line in text.splitlines():
        if line.strip().startswith(label):
            return line.strip()[len(label) :].strip()
    raise AssertionError(f"no {label!r} line in {text!r}")


def foreign_sqlite(path: Path) -> bytes:
    with sqlite3.connect(path) as connection:
        connection.execute("CREATE TABLE notes (body TEXT)")
        connection.execute("INSERT INTO notes VALUES ('mine')")
    connection.close()
    return path.read_bytes()


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


# ------------------------------------------------------------------ item 9


@pytest.mark.parametrize("user", MARKUP_IDS)
def test_ids_with_brackets_are_printed_as_text(am: Any, target: Any, user: str) -> None:
    saved = am("meter", "set", "--user", user, "--threshold", "5", *target.flags)
    assert saved.exit_code == 0, saved.stderr
    assert row_of(saved.stdout, "User") == user
    assert f"Meter of {user}," in saved.stdout
    shown = am("meter", "get", "--user", user, *target.flags)
    assert shown.exit_code == 0, shown.stderr
    assert row_of(shown.stdout, "User") == user


def test_events_and_report_print_data_as_text(am: Any, target: Any) -> None:
    user, agent = "[bold]eve", "[/]agent"
    recorded = am(
        "record", "api", "--user", user, "--agent", agent, "--api-calls", "1",
        "--unit-price", "0.5", *target.flags,
    )  # fmt: skip
    assert recorded.exit_code == 0, recorded.stderr
    listed = am("events", *target.flags)
    assert listed.exit_code == 0, listed.stderr
    assert user in listed.stdout
    assert agent in listed.stdout
    reported = am("report", "--since", "1d", "--group-by", "user", *target.flags)
    assert reported.exit_code == 0, reported.stderr
    assert user in reported.stdout


# ----------------------------------------------------------------- item 10


@pytest.mark.parametrize(
    "command",
    [
        ["stats"],
        ["report"],
        ["events"],
        ["meter", "get", "--user", "u"],
        ["billing", "list"],
        ["projects", "list"],
        ["meter", "set", "--user", "u", "--threshold", "1"],
        ["record", "instant", "--user", "u", "--agent", "a", "--amount", "1"],
    ],
)
def test_a_sqlite_file_that_is_not_a_ledger_is_refused_untouched(
    am: Any, tmp_path: Path, error_line: Any, command: list[str]
) -> None:
    path = tmp_path / "other.db"
    before = foreign_sqlite(path)
    result = am(*command, "--db", f"sqlite:///{path}")
    assert result.exit_code == 2
    assert "not an agentmeter ledger" in error_line(result)
    assert path.read_bytes() == before
    with sqlite3.connect(path) as connection:
        tables = {row[0] for row in connection.execute("SELECT name FROM sqlite_master")}
    connection.close()
    assert tables == {"notes"}


@pytest.mark.parametrize(
    "command", [["stats"], ["report"], ["events"], ["billing", "list"], ["projects", "list"]]
)
def test_read_commands_never_create_a_ledger(
    am: Any, tmp_path: Path, error_line: Any, command: list[str]
) -> None:
    home = tmp_path / "home"
    missing = tmp_path / "typo.db"
    result = am(*command, "--db", f"sqlite:///{missing}")
    assert result.exit_code == 2
    assert "no ledger" in error_line(result)
    assert not missing.exists()
    default = am(*command, env={"HOME": str(home)})  # the default ledger, not there yet
    assert default.exit_code == 2, default.stdout
    assert "no ledger" in error_line(default)
    assert not (home / ".agentmeter" / "ledger.db").exists()


def test_ledger_open_refuses_foreign_files_and_missing_ledgers(tmp_path: Path) -> None:
    path = tmp_path / "other.db"
    before = foreign_sqlite(path)
    with pytest.raises(AgentMeterConfigurationError, match="not an agentmeter ledger"):
        Ledger.open(f"sqlite:///{path}")
    assert path.read_bytes() == before
    with pytest.raises(AgentMeterConfigurationError, match="no ledger"):
        Ledger.open(f"sqlite:///{tmp_path / 'none.db'}", create=False)
    assert not (tmp_path / "none.db").exists()
    Ledger.open(f"sqlite:///{tmp_path / 'new.db'}").close()  # create=True still creates
    Ledger.open(f"sqlite:///{tmp_path / 'new.db'}", create=False).close()


# ----------------------------------------------------------------- item 12


def test_configuration_mistakes_are_one_plain_line_exit_2(
    am: Any, tmp_path: Path, error_line: Any
) -> None:
    garbage = tmp_path / "garbage.db"
    garbage.write_bytes(b"this is not a database, just text\n" * 100)
    blocker = tmp_path / "a-file"
    blocker.write_text("x")
    cases = {
        "foo://x/y": "unsupported ledger URL scheme",
        f"sqlite:///{garbage}": "not a database",
        f"sqlite:///{blocker}/sub/ledger.db": str(blocker),
    }
    for url, expected in cases.items():
        for command in (["stats"], ["meter", "set", "--user", "u", "--threshold", "1"]):
            result = am(*command, "--db", url)
            line = error_line(result)
            assert result.exit_code == 2, (url, line)
            assert "unexpected" not in line
            assert expected in line, line


def test_an_unreachable_postgresql_is_a_runtime_error_exit_1(am: Any, error_line: Any) -> None:
    pytest.importorskip("psycopg")
    url = f"postgresql+psycopg://user:secret-pw@127.0.0.1:{free_port()}/ledger"
    result = am("stats", "--db", url)
    line = error_line(result)
    assert result.exit_code == 1
    assert "unexpected" not in line
    assert "cannot reach the ledger" in line
    assert "secret-pw" not in line


# ----------------------------------------------------------------- item 13


def test_all_and_limit_together_is_a_usage_error(am: Any, target: Any, error_line: Any) -> None:
    result = am("events", "--all", "--limit", "5", *target.flags)
    assert result.exit_code == 2
    assert "--all" in error_line(result)
    assert "--limit" in error_line(result)


def test_one_call_is_singular(am: Any, target: Any) -> None:
    am("record", "api", "--user", "u", "--agent", "a", "--api-calls", "1",
       "--unit-price", "0.1", *target.flags)  # fmt: skip
    listed = am("events", *target.flags)
    assert re.search(r"\b1 call\b", listed.stdout), listed.stdout
    assert "1 calls" not in listed.stdout


@pytest.mark.parametrize(
    "command",
    [
        ["report"],
        ["report", "--format", "csv"],
        ["report", "--format", "json"],
        ["events"],
        ["events", "--format", "csv"],
        ["stats"],
        ["billing", "list"],
    ],
)
def test_every_output_file_is_confirmed_on_stderr(
    am: Any, target: Any, tmp_path: Path, command: list[str]
) -> None:
    am("record", "instant", "--user", "u", "--agent", "a", "--amount", "1", *target.flags)
    output = tmp_path / "out.txt"
    result = am(*command, "-o", output, *target.flags)
    assert result.exit_code == 0, result.stderr
    assert result.stdout == ""
    assert result.stderr.strip().endswith(f"written to {output}"), result.stderr
    assert output.exists()


def test_money_is_shown_normalized_and_unpadded(am: Any, target: Any) -> None:
    shown = am("meter", "increment", "--user", "m", "--amount", "4.0500", *target.flags)
    assert shown.exit_code == 0, shown.stderr
    assert row_of(shown.stdout, "Usage") == "4.05"
    for amount in ("100", "0.125"):
        made = am("billing", "create", "--since", "2025-01-01", "--until", "2025-02-01",
                  "--amount", amount, *target.flags)  # fmt: skip
        assert made.exit_code == 0, made.stderr
    listed = am("billing", "list", *target.flags)
    amounts = re.findall(r"\s(\d[\d.,]*)\s+pending", listed.stdout)
    assert sorted(amounts) == ["0.125", "100"], listed.stdout
    recorded = am("record", "api", "--user", "m", "--agent", "a", "--api-calls", "1000",
                  "--unit-price", "0.1", *target.flags)  # fmt: skip
    assert "cost: 100\n" in recorded.stdout, recorded.stdout
    assert "E+" not in recorded.stdout + listed.stdout


def test_a_meter_never_reset_or_budgeted_says_so(am: Any, target: Any) -> None:
    am("record", "instant", "--user", "nb", "--agent", "a", "--amount", "2", *target.flags)
    for command in (["get"], ["increment", "--amount", "1"]):
        shown = am("meter", *command, "--user", "nb", *target.flags)
        assert shown.exit_code == 0, shown.stderr
        assert row_of(shown.stdout, "Last reset (UTC)") == "never"
        assert row_of(shown.stdout, "Threshold") == "none"
    reset = am("meter", "reset", "--user", "nb", *target.flags)
    assert row_of(reset.stdout, "Last reset (UTC)") != "never"


# ----------------------------------------------------------------- item 14


def test_connection_refused_names_the_url_and_the_flag(am: Any, error_line: Any) -> None:
    url = f"http://127.0.0.1:{free_port()}"
    flags = ["--api-key", "sk-test-0123456789abcdef", "--project-id", "p"]
    result = am("stats", "--base-url", url, *flags)
    line = error_line(result)
    assert result.exit_code == 1
    assert line.startswith(f"error: cannot reach {url} (connection refused)"), line
    assert "--base-url" in line
    assert "AGENTMETER_BASE_URL" not in line
    assert "HTTPConnectionPool" not in line
    assert "Max retries" not in line
    by_env = am("stats", *flags, env={"AGENTMETER_BASE_URL": url})
    assert "AGENTMETER_BASE_URL" in error_line(by_env)
    assert by_env.exit_code == 1


# ----------------------------------------------------------------- item 15


def test_projects_list_shows_projects_that_only_have_events(tmp_path: Path, am: Any) -> None:
    url = f"sqlite:///{tmp_path / 'ledger.db'}"
    ledger = Ledger.open(url)
    try:
        event = APIRequestPayEvent(
            id="e1", project_id="legacy", agent_id="a", user_id="u", api_calls=1,
            unit_price="0.1",
        )  # fmt: skip
        with ledger.writing() as connection:  # as a 0.2 embedded ledger left it
            connection.exec_driver_sql("PRAGMA foreign_keys=OFF")
        ledger.ensure_project("legacy", "x")
        ledger.record_events([event])
        with ledger.writing() as connection:
            connection.exec_driver_sql("DELETE FROM projects WHERE id = 'legacy'")
    finally:
        ledger.close()
    listed = am("projects", "list", "--db", url)
    assert listed.exit_code == 0, listed.stderr
    assert re.search(r"^legacy\tlegacy\t", listed.stdout, re.MULTILINE), listed.stdout
    with AgentMeterClient(base_url=url) as client:
        ids = [project.id for project in client.list_projects()]
    assert "legacy" in ids


def test_serve_refuses_a_file_that_is_not_a_ledger(
    am: Any, tmp_path: Path, error_line: Any
) -> None:
    path = tmp_path / "other.db"
    before = foreign_sqlite(path)
    result = am("serve", "--db", f"sqlite:///{path}", "--port", str(free_port()))
    assert result.exit_code == 2
    assert "not an agentmeter ledger" in error_line(result)
    assert path.read_bytes() == before


# ------------------------------------------------------------------ item 5


def test_windows_without_until_end_now(am: Any, target: Any) -> None:
    """An event stamped a little ahead (within the allowed skew) is not in "up to now"."""
    ahead = datetime.now(timezone.utc) + timedelta(minutes=2)
    events = [
        InstantPayEvent(project_id=target.project_id, agent_id="a", user_id=user, amount=1, **at)
        for user, at in [("later", {"timestamp": ahead}), ("now", {})]
    ]
    assert target.client.record_events(events).accepted == 2
    report = am("report", "--since", "1h", "--group-by", "user", "--format", "json", *target.flags)
    assert report.exit_code == 0, report.stderr
    users = {row["user_id"] for row in json.loads(report.stdout)["rows"]}
    assert users == {"now"}
    events = am("events", "--format", "json", *target.flags)
    assert events.exit_code == 0, events.stderr
    assert [event["user_id"] for event in json.loads(events.stdout)["events"]] == ["now"]
