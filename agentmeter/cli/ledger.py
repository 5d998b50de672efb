"""``agentmeter ledger check``: a ledger database's rollups against its events.

Works on the database itself (``--db``, default the embedded ledger file),
not through a server: it reads every event once. Exit 0 when every rollup
row and spend total equals the events' own sums, 1 when any differs (each
difference is listed); ``--repair`` then rebuilds them from the events.
"""

from __future__ import annotations

import sys

import click

from .common import EXIT_API, handle_errors
from .output import dump_json


@click.group(
    epilog="""
\b
Examples:
  agentmeter ledger check
  agentmeter ledger check --db sqlite:///ledger.db --repair
"""
)
def ledger() -> None:
    """Look after a ledger database directly (no server)."""


@ledger.command(
    epilog="""
\b
Examples:
  agentmeter ledger check
  agentmeter ledger check --db postgresql+psycopg://u:p@db/agentmeter --format json
  agentmeter ledger check --db sqlite:///ledger.db --repair
"""
)
@click.option("--db", "db_url", metavar="URL", help="Ledger database (default: the embedded file).")
@click.option(
    "--repair", is_flag=True, help="Rebuild the rollups and spend totals from the events."
)
@click.option("--format", "output", type=click.Choice(["text", "json"]), default="text")
@handle_errors
def check(db_url: str | None, repair: bool, output: str) -> None:
    """Recompute the usage rollups and spend totals from the events; report any difference."""
    from ..ledger import Ledger
    from ..transport.local import default_ledger_url

    opened = Ledger.open(db_url or default_ledger_url(), create=False)
    try:
        result = opened.check_rollups()
        if repair and result.differences:
            opened.repair_rollups()
    finally:
        opened.close()
    differences = [str(difference) for difference in result.differences]
    if output == "json":
        click.echo(dump_json({"rows": result.rows, "differences": differences, "repaired": repair}))
    else:
        for line in differences[:50]:
            click.echo(line)
        more = len(differences) - 50
        if more > 0:
            click.echo(f"... and {more} more")
        verdict = "match the events" if not differences else f"{len(differences)} differ"
        click.echo(f"{result.rows} rollup rows and spend totals: {verdict}")
        if repair and differences:
            click.echo("rebuilt from the events")
    if differences and not repair:
        sys.exit(EXIT_API)
