"""``agentmeter serve``: the reference server on a ledger."""

from __future__ import annotations

import logging
import os

import click


@click.command(
    epilog="""
\b
Examples:
  agentmeter serve
  agentmeter serve --host 0.0.0.0 --port 8787 --db sqlite:///var/agentmeter/ledger.db
  AGENTMETER_ADMIN_KEY=... agentmeter serve --db postgresql+psycopg://u:p@db/agentmeter
"""
)
@click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
@click.option("--port", default=8787, show_default=True, type=click.IntRange(1, 65535))
@click.option(
    "--db",
    "db_url",
    metavar="URL",
    help="Ledger database (default: the embedded default ledger file).",
)
@click.option(
    "--pool-size",
    default=5,
    show_default=True,
    type=click.IntRange(1, 200),
    help="Database connections per server process (PostgreSQL).",
)
@click.option(
    "--log-level",
    default="info",
    show_default=True,
    type=click.Choice(["critical", "error", "warning", "info", "debug"]),
)
def serve(host: str, port: int, db_url: str | None, pool_size: int, log_level: str) -> None:
    """Serve the AgentMeter API.

    The admin key is AGENTMETER_ADMIN_KEY; without it, a ledger that has no
    admin key yet gets one, printed here once.
    """
    try:
        from ..ledger import Ledger
        from ..server import bootstrap_admin_key
        from ..server import serve as run_server
        from ..transport.local import default_ledger_url
    except ImportError as exc:
        raise click.ClickException(
            f"serve needs the server extra ({exc.name} is missing): "
            "pip install 'agentmeter[server]'"
        ) from None
    logging.basicConfig(level=log_level.upper(), format="%(levelname)s %(name)s: %(message)s")
    admin_key = os.environ.get("AGENTMETER_ADMIN_KEY") or None
    ledger = Ledger.open(db_url or default_ledger_url(), pool_size=pool_size)
    new_key = bootstrap_admin_key(ledger, admin_key)
    if new_key:
        click.echo(f"admin key (shown once, store it now): {new_key}")
    click.echo(f"agentmeter serving {ledger!r} on http://{host}:{port}", err=True)
    run_server(ledger, host=host, port=port, admin_key=admin_key, log_level=log_level)
