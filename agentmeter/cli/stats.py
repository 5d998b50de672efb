"""``agentmeter stats``: a project's totals over a recent timeframe.

From a ledger named by URL the totals are read with the database's driver
alone when they can be (``ledger/fast_reports.py``), else through the client.
"""

from __future__ import annotations

import contextlib
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

import click
from click.core import ParameterSource

from .common import project_of, reads_ledger_or_client
from .output import (
    count_text,
    format_option,
    key_value_table,
    money_display,
    now_text,
    output_option,
    print_table,
    write_csv,
    write_json,
)
from .project_stats import show_project_stats
from .report import HEADERS, METRICS
from .windows import MAX_DAYS

if TYPE_CHECKING:  # loaded when the command runs, not for --help
    from ..client import AgentMeterClient
    from ..ledger.fast_reports import RolledStats
    from ..models import MeterStats


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
@reads_ledger_or_client(lambda url, project_id, options: _stats_from_rollups(
    url, project_id, **options
))  # fmt: skip
def stats(
    client: AgentMeterClient,
    timeframe: str,
    days: int | None,
    all_projects: bool,
    fmt: str,
    output: Path | None,
) -> None:
    """Totals over a recent timeframe: events, API calls, tokens, cost."""
    timeframe = _timeframe(timeframe, days)
    result = client.get_meter_stats(timeframe=timeframe, all_projects=all_projects)
    if all_projects:
        show_project_stats(result, fmt, output)
        return
    _show_stats(result, project_of(client), fmt, output)


def _timeframe(timeframe: str, days: int | None) -> str:
    if days is None:
        return timeframe
    if _both_given():
        raise click.UsageError("give either --days or --timeframe, not both")
    return f"{days} days"


def _both_given() -> bool:
    source = click.get_current_context().get_parameter_source("timeframe")
    return source is ParameterSource.COMMANDLINE


def _stats_from_rollups(
    url: str, project_id: str, *, timeframe: str, days: int | None, all_projects: bool,
    fmt: str, output: Path | None,
) -> bool:  # fmt: skip
    """The totals read with the database's driver alone (see ``ledger/fast_reports.py``)."""
    from ..ledger.fast_reports import RollupReader

    if all_projects or (days is not None and _both_given()):
        return False  # the client path's errors come in its own order
    timeframe = _timeframe(timeframe, days)
    reader = RollupReader.open(url, project_id)
    if reader is None:
        return False
    with contextlib.closing(reader):
        result = reader.stats(timeframe, _now_micros())
    if result is None:
        return False
    _show_stats(result, project_id, fmt, output)
    return True


def _now_micros() -> int:
    return time.time_ns() // 1000


def _show_stats(
    result: MeterStats | RolledStats, project_id: str | None, fmt: str, output: Path | None
) -> None:
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
        document = {"generated_at": now_text(), "project_id": project_id, **values}
        write_json(output, document)
    else:
        pairs = [("Timeframe", result.timeframe)]
        pairs += [(HEADERS[m], count_text(values[m])) for m in METRICS[:-1]]
        pairs.append(("Cost", money_display(result.total_cost)))
        title = f"Project {project_id}, last {result.timeframe}"
        if result.timeframe == "all":
            title = f"Project {project_id}, all time"
        print_table(key_value_table(pairs, title=title), output)
