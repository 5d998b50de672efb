"""``agentmeter summary``: one row per user (or per project), totals, averages, top users.

The figures come from ``GET /api/meter/summary`` (the embedded ledger
answers the same request), summed exactly there; this module adds the
averages and the top users of :class:`~agentmeter.core.summary_answers.UsageSummary`
and renders them. Times are UTC; the default range is the last 30 days.
"""

from __future__ import annotations

from datetime import datetime, timedelta, timezone
from pathlib import Path
from typing import Any

import click

from ..client import AgentMeterClient
from ..core.summary_answers import SummaryRow, UsageSummary
from ..pricing import money_text
from .common import project_of, reads_client
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
from .params import MOMENT, TIME_HELP, check_range, end_or_now
from .windows import time_shorthands

DEFAULT_DAYS = 30
METRICS = ("events", "api_calls", "tokens_in", "tokens_out", "total_tokens", "cost")
TIMES = ("first_event", "last_event")
_HEADERS = ("Events", "API calls", "Tokens in", "Tokens out", "Total tokens", "Cost")

EXAMPLES = """
\b
Examples:
  agentmeter summary                                # the last 30 days
  agentmeter summary --days 7
  agentmeter summary --month 2025-01 --format csv -o january.csv
  agentmeter summary --user alice --since 2025-01-01 --format json
  agentmeter summary --all-projects --api-key $ADMIN_KEY

\b
Without a range: the last 30 days. --month 2025-01 and --hour 2025-03-01T10
are UTC; --days N is the last N days; --until is exclusive.
"""


@click.command(epilog=EXAMPLES)
@click.option("--since", type=MOMENT, help=f"Start, inclusive: {TIME_HELP}.")
@click.option("--until", type=MOMENT, help="End, exclusive (same forms as --since).")
@time_shorthands()
@click.option("--user", "user_id", metavar="USER", help="Only this user.")
@click.option(
    "--all-projects", is_flag=True, help="One row per project, every project (admin key)."
)
@format_option()
@output_option()
@reads_client
def summary(
    client: AgentMeterClient,
    since: datetime | None,
    until: datetime | None,
    user_id: str | None,
    all_projects: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """Usage per user: events, API calls, tokens, cost, first and last event.

    The table ends with a totals row, then the number of users, the average
    cost and tokens per user (rounded half-even: 8 places, 2 places) and the
    top user by cost and by tokens. With --all-projects (admin key) each row
    is a project. CSV has the rows only; JSON has the query, rows and totals.
    """
    check_range(since, until)
    if since is None and until is None:
        since = datetime.now(timezone.utc) - timedelta(days=DEFAULT_DAYS)
    found = client.get_usage_summary(
        start_date=since, end_date=end_or_now(until), user_id=user_id, all_projects=all_projects
    )
    name = "project_id" if all_projects else "user_id"
    columns = [name, *METRICS, *TIMES]
    what = plural(len(found.rows), "row")
    if fmt == "csv":
        write_csv(output, columns, [_values(row, columns) for row in found.rows], what)
        return
    query = {
        "project_id": None if all_projects else project_of(client),
        "all_projects": all_projects,
        "since": optional_time_text(since),
        "until": optional_time_text(until),
        "user_id": user_id,
    }
    if fmt == "json":
        document = {
            "generated_at": now_text(),
            "query": query,
            "rows": [_json_row(row, columns) for row in found.rows],
            "totals": _json_row(found.totals, columns[1:]),
            "figures": _figures(found),
        }
        write_json(output, document, what)
        return
    scope = "all projects" if all_projects else f"project {query['project_id']}"
    table = _table(found, name, f"Usage per {found.group}, {scope}")
    print_table(table, output, footer=_footer(found, since, until), what=what)


def _values(row: SummaryRow, columns: list[str]) -> list[Any]:
    return [getattr(row, column) for column in columns]


def _json_row(row: SummaryRow, columns: list[str]) -> dict[str, Any]:
    document = {column: getattr(row, column) for column in columns}
    document["cost"] = money_text(row.cost)
    for column in TIMES:
        document[column] = optional_time_text(document[column])
    return document


def _figures(found: UsageSummary) -> dict[str, Any]:
    """What the table shows below its totals, for programs."""
    by_cost, by_tokens = found.top_by_cost(), found.top_by_tokens()
    return {
        found.group + "s": len(found.rows),
        "average_cost": money_text(found.average_cost()),
        "average_tokens": str(found.average_tokens()),
        "top_by_cost": None if by_cost is None else found.name_of(by_cost),
        "top_by_tokens": None if by_tokens is None else found.name_of(by_tokens),
    }


def _table(found: UsageSummary, name: str, title: str) -> TextTable:
    columns = [Column("Project" if name == "project_id" else "User")]
    columns += [Column(header, numeric=True) for header in _HEADERS]
    columns += [Column("First event"), Column("Last event")]
    table = TextTable(columns, title=title)
    costs = align_money([row.cost for row in found.rows] + [found.totals.cost])
    for row, cost in zip(found.rows, costs, strict=False):
        table.add_row(found.name_of(row) or "-", *_cells(row, cost))
    table.set_total("Total", *_cells(found.totals, costs[-1]))
    return table


def _cells(row: SummaryRow, cost: str) -> list[str]:
    counts = [count_text(getattr(row, metric)) for metric in METRICS[:-1]]
    times = [time_text(moment) if moment else "-" for moment in (row.first_event, row.last_event)]
    return [*counts, cost, *times]


def _footer(found: UsageSummary, since: datetime | None, until: datetime | None) -> list[str]:
    noun = found.group
    lines = [
        f"{plural(len(found.rows), noun)}; per {noun}: cost {money_display(found.average_cost())}"
        f", tokens {found.average_tokens():,}"
    ]
    by_cost, by_tokens = found.top_by_cost(), found.top_by_tokens()
    if by_cost is not None and by_tokens is not None:
        lines.append(
            f"Top {noun} by cost: {found.name_of(by_cost)} ({money_display(by_cost.cost)}); "
            f"by tokens: {found.name_of(by_tokens)} ({count_text(by_tokens.total_tokens)})"
        )
    start = time_text(since) if since is not None else "the first event"
    end = f"before {time_text(until)}" if until is not None else "now"
    lines.append(f"Times in UTC, from {start} to {end}.")
    return lines
