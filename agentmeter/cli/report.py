"""``agentmeter report`` and ``agentmeter stats``: usage and cost, summed in the ledger.

The report is aggregated by the ledger in SQL (one row per period and
group); this module only adds the exact Decimal totals and renders. Times
are UTC; ``--until`` is exclusive (``since <= time < until``).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from ..core.groups import group_column
from ..core.report_totals import ReportTotals
from ..pricing import MONEY_CONTEXT, ZERO, money_text
from .common import project_of, reads_client
from .output import (
    Column,
    TextTable,
    align_money,
    count_text,
    format_option,
    key_value_table,
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
from .project_stats import show_project_stats
from .windows import MAX_DAYS, time_shorthands

if TYPE_CHECKING:  # the client and the models load when the command runs, not for --help
    from ..client import AgentMeterClient
    from ..models import ReportRow

METRICS = ("events", "api_calls", "tokens_in", "tokens_out", "cost")
_HEADERS = {
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
    def of(cls, rows: Sequence[ReportRow], column: str = "user_id") -> UserSummary:
        summary = cls(noun="project" if column == "project_id" else "user")
        for row in rows:
            user = getattr(row, column) or ""
            summary.costs[user] = MONEY_CONTEXT.add(summary.costs.get(user, ZERO), row.cost)
        return summary

    def top(self) -> tuple[str, Decimal] | None:
        if not self.costs:
            return None
        return min(self.costs.items(), key=lambda item: (-item[1], item[0]))


def _row_values(row: ReportRow, keys: Sequence[str]) -> list[Any]:
    return [
        row.period,
        *(row.group_value(key) for key in keys),
        *(getattr(row, m) for m in METRICS),
    ]


def _row_dict(row: ReportRow, keys: Sequence[str]) -> dict[str, Any]:
    names = ["period", *keys, *METRICS]
    values = _row_values(row, keys)
    return {
        name: money_text(value) if name == "cost" else value
        for name, value in zip(names, values, strict=True)
    }


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
@reads_client
def report(
    client: AgentMeterClient,
    granularity: str,
    group_by: tuple[str, ...],
    all_projects: bool,
    since: datetime | None,
    until: datetime | None,
    user_id: str | None,
    agent_id: str | None,
    fmt: str,
    output: Path | None,
) -> None:
    """Usage and cost per period and group, with exact totals.

    The table ends with a totals row and a summary (events, users, the top
    user by cost); CSV has one row per period and group and no totals; JSON
    has the query, the rows and the totals.
    """
    check_range(since, until)
    groups = list(dict.fromkeys(group_by))
    keys = (["project_id"] if all_projects else []) + [group_column(group) for group in groups]
    filters: dict[str, Any] = {
        "start_date": since,
        "end_date": end_or_now(until),
        "user_id": user_id,
        "agent_id": agent_id,
        "all_projects": all_projects,
    }
    rows = client.get_report(granularity=granularity, group_by=groups, **filters)
    totals = Totals.of(rows)
    if fmt == "csv":
        written = plural(len(rows), "row")
        write_csv(
            output, ["period", *keys, *METRICS], [_row_values(row, keys) for row in rows], written
        )
        return
    query: dict[str, Any] = {
        "project_id": None if all_projects else project_of(client),
        "granularity": granularity,
        "group_by": groups,
        "since": optional_time_text(since),
        "until": optional_time_text(until),
        "user_id": user_id,
        "agent_id": agent_id,
    }
    if all_projects:
        query["all_projects"] = True
    if fmt == "json":
        document = {
            "generated_at": now_text(),
            "query": query,
            "rows": [_row_dict(row, keys) for row in rows],
            "totals": totals.as_dict(),
        }
        write_json(output, document, plural(len(rows), "row"))
        return
    if all_projects:
        users = UserSummary.of(rows, "project_id")
    elif "user_id" in keys:
        users = UserSummary.of(rows)
    else:  # one more aggregate: the users of the same events, by month
        users = UserSummary.of(client.get_report(granularity="month", group_by=["user"], **filters))
    table = _report_table(rows, keys, totals, query)
    footer = _summary_lines(totals, users, since, until)
    print_table(table, output, footer=footer, what=plural(len(rows), "row"))


def _report_table(
    rows: Sequence[ReportRow], keys: Sequence[str], totals: Totals, query: dict[str, Any]
) -> TextTable:
    scope = "all projects" if query.get("all_projects") else f"project {query['project_id']}"
    title = f"Usage by {query['granularity']}, {scope}"
    columns = [Column(_HEADERS["period"]), *(Column(_HEADERS.get(key, key)) for key in keys)]
    columns += [Column(_HEADERS[metric], numeric=True) for metric in METRICS]
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


STATS_EXAMPLES = """
\b
Examples:
  agentmeter stats --db sqlite:///ledger.db
  agentmeter stats --timeframe "7 days"
  agentmeter stats --timeframe all --format json
  agentmeter stats --days 7
  agentmeter stats --all-projects --timeframe all --api-key $ADMIN_KEY
"""


@click.command(epilog=STATS_EXAMPLES)
@click.option(
    "--timeframe",
    default="30 days",
    show_default=True,
    help='"1 hour", "24 hours", "7 days", "30 days", "all", or "N hours" / "N days".',
)
@click.option(
    "--days",
    type=click.IntRange(1, MAX_DAYS),
    metavar="N",
    help='The last N days: the same as --timeframe "N days".',
)
@click.option(
    "--all-projects",
    is_flag=True,
    help="Every project's totals, one row each (needs the admin key).",
)
@format_option()
@output_option()
@reads_client
def stats(
    client: AgentMeterClient,
    timeframe: str,
    days: int | None,
    all_projects: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """Totals over a recent timeframe: events, API calls, tokens, cost."""
    if days is not None:
        source = click.get_current_context().get_parameter_source("timeframe")
        if source is ParameterSource.COMMANDLINE:
            raise click.UsageError("give either --days or --timeframe, not both")
        timeframe = f"{days} days"
    result = client.get_meter_stats(timeframe=timeframe, all_projects=all_projects)
    if all_projects:
        show_project_stats(result, fmt, output)
        return
    values: dict[str, Any] = {
        "timeframe": result.timeframe,
        "events": result.total_events,
        "api_calls": result.total_api_calls,
        "tokens_in": result.total_tokens_in,
        "tokens_out": result.total_tokens_out,
        "cost": result.total_cost,
    }
    if fmt == "csv":
        write_csv(output, list(values), [list(values.values())])
    elif fmt == "json":
        document = {"generated_at": now_text(), "project_id": project_of(client), **values}
        write_json(output, document)
    else:
        pairs = [("Timeframe", result.timeframe)]
        pairs += [(_HEADERS[m], count_text(values[m])) for m in METRICS[:-1]]
        pairs.append(("Cost", money_display(result.total_cost)))
        title = f"Project {project_of(client)}, last {result.timeframe}"
        if result.timeframe == "all":
            title = f"Project {project_of(client)}, all time"
        print_table(key_value_table(pairs, title=title), output)
