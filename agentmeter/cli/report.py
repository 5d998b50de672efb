"""``agentmeter report``: usage and cost per period and group, summed in the ledger.

The report is aggregated by the ledger in SQL (one row per period and
group); this module only adds the exact Decimal totals and renders. From a
ledger named by URL, a report the usage rollups fit is read with the
database's driver alone (``ledger/fast_reports.py``: no SQLAlchemy, no
pydantic, so the command takes about a tenth of the time), any other through
the client; both give the same output. Times are UTC; ``--until`` is
exclusive (``since <= time < until``).
"""

from __future__ import annotations

import contextlib
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click

from ..core.groups import group_column
from ..core.report_totals import ReportTotals
from ..pricing import MONEY_CONTEXT, ZERO, money_text
from .common import bulk_allocation, project_of, reads_ledger_or_client
from .output import (
    Column,
    TextTable,
    align_money,
    count_text,
    format_option,
    money_display,
    now_text,
    optional_time_text,
    output_option,
    plural,
    print_table,
    time_text,
    write_csv,
    write_json,
)
from .params import GROUP, MOMENT, TIME_HELP, check_range, end_or_now
from .windows import time_shorthands

if TYPE_CHECKING:  # the client and the models load when the command runs, not for --help
    from ..client import AgentMeterClient
    from ..ledger.fast_reports import RolledRow
    from ..models import ReportRow

    ShownRow = ReportRow | RolledRow  # from the client, or read from the rollups

METRICS = ("events", "api_calls", "tokens_in", "tokens_out", "cost")
HEADERS = {
    "period": "Period",
    "project_id": "Project",
    "user_id": "User",
    "agent_id": "Agent",
    "payment_type": "Payment type",
    "model": "Model",
    "events": "Events",
    "api_calls": "API calls",
    "tokens_in": "Tokens in",
    "tokens_out": "Tokens out",
    "cost": "Cost",
}
_NONE = "-"

REPORT_EXAMPLES = """
\b
Examples:
  agentmeter report --db sqlite:///ledger.db
  agentmeter report --since 7d --group-by user
  agentmeter report --granularity month --group-by agent --group-by model --since 3m
  agentmeter report --since 2025-01-01 --until 2025-04-01 --format csv -o q1.csv
  agentmeter report --user alice --since 24h --granularity hour --format json
  agentmeter report --month 2025-01 --group-by metadata.provider --group-by metadata.service
  agentmeter report --all-projects --granularity month --api-key $ADMIN_KEY
  agentmeter report --base-url https://meter.example.com --api-key $KEY --project-id proj_1

\b
--since/--until take a date (2025-01-31, midnight UTC), an RFC 3339 time
(2025-01-31T12:00:00Z; no offset means UTC), or a time before now: 24h,
7d, 2w, 3m (3 calendar months). --until is exclusive. Instead of them:
--month 2025-01 or --hour 2025-03-01T10 (UTC), or --days 7 (the last 7 days).

\b
--group-by metadata.KEY groups by a key of the events' metadata (letters,
digits, _ - .); events without it are shown under "-".
"""


class Totals(ReportTotals):
    """The report's totals line."""

    def as_dict(self) -> dict[str, Any]:
        return {
            "events": self.events,
            "api_calls": self.api_calls,
            "tokens_in": self.tokens_in,
            "tokens_out": self.tokens_out,
            "cost": money_text(self.cost),
        }


@dataclass
class UserSummary:
    """How many users had events, and who cost the most."""

    costs: dict[str, Decimal] = field(default_factory=dict)
    noun: str = "user"

    @classmethod
    def of(cls, rows: Sequence[ShownRow], column: str = "user_id") -> UserSummary:
        summary = cls(noun="project" if column == "project_id" else "user")
        for row in rows:
            user = getattr(row, column) or ""
            summary.costs[user] = MONEY_CONTEXT.add(summary.costs.get(user, ZERO), row.cost)
        return summary

    def top(self) -> tuple[str, Decimal] | None:
        if not self.costs:
            return None
        return min(self.costs.items(), key=lambda item: (-item[1], item[0]))


def _row_values(row: ShownRow, keys: Sequence[str]) -> list[Any]:
    """A row's values as CSV and JSON carry them (cost as its exact text)."""
    groups = [row.group_value(key) for key in keys]
    sums = [row.events, row.api_calls, row.tokens_in, row.tokens_out, money_text(row.cost)]
    return [row.period, *groups, *sums]


def _row_dict(row: ShownRow, keys: Sequence[str]) -> dict[str, Any]:
    names = ["period", *keys, *METRICS]
    return dict(zip(names, _row_values(row, keys), strict=True))


@click.command(epilog=REPORT_EXAMPLES)
@click.option(
    "--granularity",
    type=click.Choice(["hour", "day", "month"]),
    default="day",
    show_default=True,
    help="One row per hour, day or month (UTC).",
)
@click.option(
    "--group-by",
    "group_by",
    type=GROUP,
    multiple=True,
    help="Split each period by user, agent, payment_type, model or metadata.KEY (repeatable).",
)
@click.option(
    "--all-projects",
    is_flag=True,
    help="Every project, grouped by project first (needs the admin key).",
)
@click.option("--since", type=MOMENT, help=f"Start, inclusive: {TIME_HELP}.")
@click.option("--until", type=MOMENT, help="End, exclusive (same forms as --since).")
@time_shorthands()
@click.option("--user", "user_id", metavar="USER", help="Only this user's events.")
@click.option("--agent", "agent_id", metavar="AGENT", help="Only this agent's events.")
@format_option()
@output_option()
@reads_ledger_or_client(lambda url, project_id, options: _report_from_rollups(
    url, project_id, ReportAsk(**options)
))  # fmt: skip
def report(client: AgentMeterClient, **options: Any) -> None:
    """Usage and cost per period and group, with exact totals.

    The table ends with a totals row and a summary (events, users, the top
    user by cost); CSV has one row per period and group and no totals; JSON
    has the query, the rows and the totals.
    """
    ask = ReportAsk(**options)
    check_range(ask.since, ask.until)
    rows = client.get_report(granularity=ask.granularity, group_by=ask.groups, **ask.filters)
    users = None
    if ask.needs_user_summary:  # one more aggregate: the users of the same events, by month
        users = UserSummary.of(
            client.get_report(granularity="month", group_by=["user"], **ask.filters)
        )
    _show_report(ask, rows, users, project_of(client))


@dataclass
class ReportAsk:
    """The report command's options, and what they ask the ledger."""

    granularity: str
    group_by: tuple[str, ...]
    all_projects: bool
    since: datetime | None
    until: datetime | None
    user_id: str | None
    agent_id: str | None
    fmt: str
    output: Path | None
    end: datetime = field(init=False)

    def __post_init__(self) -> None:
        self.end = end_or_now(self.until)

    @property
    def groups(self) -> list[str]:
        return list(dict.fromkeys(self.group_by))

    @property
    def keys(self) -> list[str]:
        first = ["project_id"] if self.all_projects else []
        return first + [group_column(group) for group in self.groups]

    @property
    def filters(self) -> dict[str, Any]:
        return {
            "start_date": self.since,
            "end_date": self.end,
            "user_id": self.user_id,
            "agent_id": self.agent_id,
            "all_projects": self.all_projects,
        }

    @property
    def needs_user_summary(self) -> bool:
        """The table's summary line needs each user's cost, which rows by user hold."""
        return self.fmt == "table" and not self.all_projects and "user_id" not in self.keys


def _report_from_rollups(url: str, project_id: str, ask: ReportAsk) -> bool:
    """The report read with the database's driver alone, when it fits the rollups."""
    from ..ledger.fast_reports import RollupReader

    bad_range = ask.since is not None and ask.until is not None and ask.until <= ask.since
    if ask.all_projects or bad_range:  # the client path's errors come in its own order
        return False
    reader = RollupReader.open(url, project_id)
    if reader is None:
        return False
    window = (ask.since, ask.end, ask.user_id, ask.agent_id)
    with bulk_allocation(), contextlib.closing(reader):
        rows = reader.report(ask.granularity, ask.groups, *window)
        by_user = reader.report("month", ["user"], *window) if ask.needs_user_summary else []
        if rows is None or by_user is None:
            return False
        users = UserSummary.of(by_user) if ask.needs_user_summary else None
        _show_report(ask, rows, users, project_id)
    return True


def _show_report(
    ask: ReportAsk, rows: Sequence[ShownRow], users: UserSummary | None, project_id: str | None
) -> None:
    keys = ask.keys
    if ask.fmt == "csv":  # rows only, no totals
        written = plural(len(rows), "row")
        lines = [_row_values(row, keys) for row in rows]
        write_csv(ask.output, ["period", *keys, *METRICS], lines, written, ready=True)
        return
    totals = Totals.of(rows)
    query: dict[str, Any] = {
        "project_id": None if ask.all_projects else project_id,
        "granularity": ask.granularity,
        "group_by": ask.groups,
        "since": optional_time_text(ask.since),
        "until": optional_time_text(ask.until),
        "user_id": ask.user_id,
        "agent_id": ask.agent_id,
    }
    if ask.all_projects:
        query["all_projects"] = True
    if ask.fmt == "json":
        document = {
            "generated_at": now_text(),
            "query": query,
            "rows": [_row_dict(row, keys) for row in rows],
            "totals": totals.as_dict(),
        }
        write_json(ask.output, document, plural(len(rows), "row"))
        return
    if users is None:
        users = UserSummary.of(rows, "project_id" if ask.all_projects else "user_id")
    table = _report_table(rows, keys, totals, query)
    footer = _summary_lines(totals, users, ask.since, ask.until)
    print_table(table, ask.output, footer=footer, what=plural(len(rows), "row"))


def _report_table(
    rows: Sequence[ShownRow], keys: Sequence[str], totals: Totals, query: dict[str, Any]
) -> TextTable:
    scope = "all projects" if query.get("all_projects") else f"project {query['project_id']}"
    title = f"Usage by {query['granularity']}, {scope}"
    columns = [Column(HEADERS["period"]), *(Column(HEADERS.get(key, key)) for key in keys)]
    columns += [Column(HEADERS[metric], numeric=True) for metric in METRICS]
    table = TextTable(columns, title=title)
    costs = align_money([row.cost for row in rows] + [totals.cost])
    for index, row in enumerate(rows):
        groups = [row.group_value(key) or _NONE for key in keys]
        counts = [count_text(getattr(row, metric)) for metric in METRICS[:-1]]
        table.add_row(row.period, *groups, *counts, costs[index])
    total_counts = [count_text(getattr(totals, metric)) for metric in METRICS[:-1]]
    table.set_total("Total", *([""] * len(keys)), *total_counts, costs[-1])
    return table


def _summary_lines(
    totals: Totals, users: UserSummary, since: datetime | None, until: datetime | None
) -> list[str]:
    start = time_text(since) if since is not None else "the first event"
    end = f"before {time_text(until)}" if until is not None else "now"
    people = len(users.costs)
    line = f"{plural(totals.events, 'event')} from {plural(people, users.noun)}"
    line += f", cost {money_display(totals.cost)}"
    top = users.top()
    if top is not None and totals.events:
        line += f"; top {users.noun} by cost: {top[0]} ({money_display(top[1])})"
    return [line, f"Times in UTC, from {start} to {end}."]
