"""Help with examples everywhere; how times and money are read and shown."""

from __future__ import annotations

import os
import subprocess
import sys
from datetime import datetime, timedelta, timezone
from decimal import Decimal

import click
import pytest

from agentmeter.cli.app import cli
from agentmeter.cli.output import align_money, count_text, money_display
from agentmeter.cli.params import months_before, parse_moment


def command_paths(group=cli, prefix=()):
    for name, command in sorted(group.commands.items()):
        yield (*prefix, name)
        if isinstance(command, click.Group):
            yield from command_paths(command, (*prefix, name))


ALL_COMMANDS = list(command_paths())


def test_every_command_is_registered():
    names = {" ".join(path) for path in ALL_COMMANDS}
    assert {
        "report", "stats", "events", "record api", "record tokens", "record instant",
        "meter get", "meter set", "meter increment", "meter reset", "billing create",
        "billing list", "billing update", "projects create", "projects list",
        "outbox status", "outbox replay", "serve",
    } <= names  # fmt: skip


@pytest.mark.parametrize("path", [(), *ALL_COMMANDS], ids=lambda p: " ".join(p) or "agentmeter")
def test_every_help_has_examples(am, path):
    done = am(*path, "--help")
    assert done.exit_code == 0, done.stderr
    assert "Examples:" in done.stdout
    examples = done.stdout.split("Examples:", 1)[1]
    assert f"agentmeter {' '.join(path)}".strip() in examples


# serve, ledger and stripe work on a database directly: --db, and no server to reach
# (stripe's customer map and sync log are ledger tables)
@pytest.mark.parametrize(
    "path", [p for p in ALL_COMMANDS if p[0] not in ("serve", "ledger", "stripe")]
)
def test_every_leaf_takes_the_connection_flags(am, path):
    command = cli
    for name in path:
        command = command.commands[name]  # type: ignore[attr-defined]
    if isinstance(command, click.Group):
        return
    names = {option for param in command.params for option in param.opts}
    assert {"--base-url", "--api-key", "--project-id", "--db"} <= names


def test_help_in_a_real_process():
    env = {k: v for k, v in os.environ.items() if not k.startswith("AGENTMETER_")}
    done = subprocess.run(
        [sys.executable, "-m", "agentmeter.cli", "report", "--help"],
        capture_output=True, text=True, env=env, timeout=60, check=False,
    )  # fmt: skip
    assert done.returncode == 0
    assert "--since WHEN" in done.stdout
    assert "3m (3 calendar months)" in done.stdout


NOW = datetime(2025, 5, 31, 15, 30, tzinfo=timezone.utc)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("7d", NOW - timedelta(days=7)),
        ("24h", NOW - timedelta(hours=24)),
        ("2w", NOW - timedelta(weeks=2)),
        ("3m", datetime(2025, 2, 28, 15, 30, tzinfo=timezone.utc)),  # clamped to February
        ("12m", datetime(2024, 5, 31, 15, 30, tzinfo=timezone.utc)),
        ("15M", datetime(2024, 2, 29, 15, 30, tzinfo=timezone.utc)),  # a leap day
        ("0d", NOW),
        ("now", NOW),
        ("today", datetime(2025, 5, 31, tzinfo=timezone.utc)),
        ("2025-01-31", datetime(2025, 1, 31, tzinfo=timezone.utc)),
        ("2025-01-31T12:00:00Z", datetime(2025, 1, 31, 12, tzinfo=timezone.utc)),
        ("2025-01-31T12:00:00", datetime(2025, 1, 31, 12, tzinfo=timezone.utc)),
        ("2025-01-31 12:00", datetime(2025, 1, 31, 12, tzinfo=timezone.utc)),
        ("2025-01-31T12:00:00+02:00", datetime(2025, 1, 31, 10, tzinfo=timezone.utc)),
        ("2025-01-31T12:00:00.000001z", datetime(2025, 1, 31, 12, 0, 0, 1, tzinfo=timezone.utc)),
    ],
)
def test_times(text, expected):
    assert parse_moment(text, now=NOW) == expected


@pytest.mark.parametrize("text", ["", "7", "d7", "7 days ago", "2025-02-30", "2025/01/31", "1y"])
def test_not_times(text):
    with pytest.raises(ValueError, match="is not a time"):
        parse_moment(text, now=NOW)


def test_months_before_crosses_years():
    january = datetime(2025, 1, 15, tzinfo=timezone.utc)
    assert months_before(january, 1) == datetime(2024, 12, 15, tzinfo=timezone.utc)
    assert months_before(january, 25) == datetime(2022, 12, 15, tzinfo=timezone.utc)


def test_numbers_as_shown():
    assert count_text(1234567) == "1,234,567"
    assert money_display(Decimal("1234567.00000001")) == "1,234,567.00000001"
    assert money_display(Decimal("1E+3")) == "1,000"
    assert money_display(Decimal("1E-9")) == "0.000000001"
    # normalized, not padded with zeros (issue 11, item 13)
    assert align_money([Decimal("0.5000"), Decimal("1234.0075"), Decimal("3")]) == [
        "0.5", "1,234.0075", "3"
    ]  # fmt: skip
    assert align_money([Decimal("2"), Decimal("30")]) == ["2", "30"]
