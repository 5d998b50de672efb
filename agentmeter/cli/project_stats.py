"""``agentmeter stats --all-projects``: each project's totals, and theirs summed.

The server (or the embedded ledger) sums each project and all of them
exactly; this module only renders: a table with a totals row, CSV with one
row per project, JSON with the projects and the totals.
"""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

from ..pricing import money_text
from .output import (
    Column,
    TextTable,
    align_money,
    count_text,
    now_text,
    plural,
    print_table,
    write_csv,
    write_json,
)

if TYPE_CHECKING:
    from ..models import MeterStats

COLUMNS = ("project_id", "events", "api_calls", "tokens_in", "tokens_out", "cost")
_HEADERS = ("Project", "Events", "API calls", "Tokens in", "Tokens out", "Cost")


def _values(item: Any, name: str) -> list[Any]:
    """One line's values: a project's, or (``name`` given) the totals'."""
    return [
        name or item.project_id,
        item.total_events,
        item.total_api_calls,
        item.total_tokens_in,
        item.total_tokens_out,
        item.total_cost,
    ]


def show_project_stats(result: MeterStats, fmt: str, output: Path | None) -> None:
    projects = result.projects or []
    what = plural(len(projects), "project")
    if fmt == "csv":
        write_csv(output, COLUMNS, [_values(project, "") for project in projects], what)
        return
    if fmt == "json":
        totals = dict(zip(COLUMNS[1:], _values(result, "all")[1:], strict=True))
        document = {
            "generated_at": now_text(),
            "all_projects": True,
            "timeframe": result.timeframe,
            "projects": [
                dict(zip(COLUMNS, _values(project, ""), strict=True)) for project in projects
            ],
            "totals": {**totals, "cost": money_text(result.total_cost)},
        }
        write_json(output, document, what)
        return
    span = "all time" if result.timeframe == "all" else f"last {result.timeframe}"
    table = TextTable(
        [Column(_HEADERS[0]), *(Column(header, numeric=True) for header in _HEADERS[1:])],
        title=f"All projects, {span}",
    )
    costs = align_money([project.total_cost for project in projects] + [result.total_cost])
    for project, cost in zip(projects, costs, strict=False):
        counts = [count_text(value) for value in _values(project, "")[1:-1]]
        table.add_row(project.project_id, *counts, cost)
    table.set_total(
        "Total", *(count_text(value) for value in _values(result, "all")[1:-1]), costs[-1]
    )
    print_table(table, output, what=what)
