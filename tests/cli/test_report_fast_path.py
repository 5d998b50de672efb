"""``report`` and ``stats`` on a ledger URL: read with the database's driver alone
(ledger/fast_reports.py) when the rollups fit, and the output is byte for byte
what the client path prints, on SQLite and PostgreSQL."""

from __future__ import annotations

from typing import Any

import pytest

from agentmeter.ledger import Ledger
from agentmeter.ledger.fast_reports import RollupReader

from .conftest import Runner, make_events

FEBRUARY = ["report", "--since", "2025-02-01", "--until", "2025-03-01T12:30:00Z"]
HOURLY = ["report", "--granularity", "hour", "--group-by", "agent", "--group-by", "user"]
COMMANDS = [
    ["report", "--format", "csv"],
    ["report", "--granularity", "month", "--format", "csv"],
    ["report", "--group-by", "user", "--format", "csv"],
    [*HOURLY, "--format", "csv"],
    [*FEBRUARY, "--group-by", "payment_type", "--agent", "support-bot", "--format", "csv"],
    ["report", "--month", "2025-02", "--group-by", "model", "--user", "bob"],
    ["report", "--granularity", "month", "--group-by", "agent"],  # the table's user summary
    ["report", "--group-by", "user"],
    ["report", "--format", "json", "--granularity", "month", "--group-by", "model"],
    ["stats", "--timeframe", "all"],
    ["stats", "--timeframe", "all", "--format", "json"],
    ["stats", "--days", "3", "--format", "csv"],
]


@pytest.fixture
def ledger_url(project_ledger: Ledger) -> str:
    project_ledger.record_events(make_events("p", 600))
    return project_ledger.url


@pytest.fixture
def opened(monkeypatch: pytest.MonkeyPatch) -> list[bool]:
    """Whether each RollupReader.open gave a reader (the fast path answered)."""
    answers: list[bool] = []
    real = RollupReader.open.__func__  # type: ignore[attr-defined]

    def spy(cls: type[RollupReader], url: str, project_id: str) -> RollupReader | None:
        reader = real(cls, url, project_id)
        answers.append(reader is not None)
        return reader  # type: ignore[no-any-return]

    monkeypatch.setattr(RollupReader, "open", classmethod(spy))
    return answers


def without_clock(text: str) -> str:
    return "\n".join(line for line in text.splitlines() if "generated_at" not in line)


@pytest.mark.parametrize("command", COMMANDS, ids=lambda command: " ".join(command))
def test_the_fast_path_prints_what_the_client_path_prints(
    am: Runner, ledger_url: str, opened: list[bool], monkeypatch: pytest.MonkeyPatch,
    command: list[str],
) -> None:  # fmt: skip
    flags = ["--db", ledger_url, "--project-id", "p"]
    fast = am(*command, *flags)
    assert fast.exit_code == 0, fast.output
    assert opened == [True]
    monkeypatch.setattr(RollupReader, "open", classmethod(lambda cls, *args: None))
    full = am(*command, *flags)
    assert full.exit_code == 0, full.output
    assert without_clock(fast.stdout) == without_clock(full.stdout)
    assert fast.stderr == full.stderr


def test_what_the_rollups_do_not_hold_goes_through_the_client(
    am: Runner, ledger_url: str, opened: list[bool]
) -> None:
    done = am("report", "--group-by", "metadata.model", "--db", ledger_url, "--project-id", "p")
    assert done.exit_code == 0, done.output
    assert opened == [True]  # opened, then the report said None: the client answered
    assert "gpt-4o" in done.stdout


def test_a_missing_ledger_file_still_gets_its_error(am: Runner, tmp_path: Any) -> None:
    missing = tmp_path / "missing.db"
    done = am("report", "--db", f"sqlite:///{missing}", "--format", "csv")
    assert done.exit_code == 2
    assert "no ledger file" in done.stderr
    assert not missing.exists()
    # The ledger is checked before the options, as on the client path.
    backwards = ["--since", "2025-03-01", "--until", "2025-02-01"]
    done = am("report", *backwards, "--db", f"sqlite:///{missing}")
    assert "no ledger file" in done.stderr
    done = am("stats", "--days", "3", "--timeframe", "all", "--db", f"sqlite:///{missing}")
    assert "no ledger file" in done.stderr


def test_a_bad_range_is_a_usage_error(am: Runner, ledger_url: str) -> None:
    done = am("report", "--since", "2025-03-01", "--until", "2025-02-01", "--db", ledger_url)
    assert done.exit_code == 2
    assert "--until" in done.stderr


@pytest.mark.parametrize(
    ("flags", "env"),
    [
        (["--project-id", ""], {"AGENTMETER_PROJECT_ID": "p"}),  # "" hides the variable
        ([], {"AGENTMETER_PROJECT_ID": "p"}),
        (["--project-id", "p"], {"AGENTMETER_TIMEOUT": "0"}),  # the client refuses it
        (["--project-id", "p"], {"AGENTMETER_RETRY_ATTEMPTS": "99"}),
    ],
)
def test_settings_read_as_the_client_reads_them(
    am: Runner, ledger_url: str, monkeypatch: pytest.MonkeyPatch, flags: list[str],
    env: dict[str, str],
) -> None:  # fmt: skip
    command = ["stats", "--timeframe", "all", "--format", "csv", "--db", ledger_url, *flags]
    fast = am(*command, env=env)
    monkeypatch.setattr(RollupReader, "open", classmethod(lambda cls, *args: None))
    full = am(*command, env=env)
    assert (fast.exit_code, fast.stdout, fast.stderr) == (
        full.exit_code, full.stdout, full.stderr,
    )  # fmt: skip
