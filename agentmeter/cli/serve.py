"""``agentmeter serve``: the reference server on a ledger."""

from __future__ import annotations

import logging
import os
import socket
import sys
from datetime import timedelta

import click


@click.command(
    epilog="""
\b
Examples:
  agentmeter serve
  agentmeter serve --host 0.0.0.0 --port 8787 --db sqlite:////var/lib/agentmeter/ledger.db
  (four slashes: sqlite:/// then the absolute path /var/...; three make a relative path)
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
@click.option(
    "--max-future-skew",
    default="300",
    show_default=True,
    metavar="SECONDS|off",
    callback=lambda _context, _param, value: _future_skew(value),
    help="Refuse events stamped more than this many seconds after the server's "
    "clock (422 naming timestamp); 'off' accepts any time.",
)
@click.option(
    "--private-webhooks/--no-private-webhooks",
    default=None,
    help="Whether webhook endpoints may be private or loopback addresses "
    "(default: yes when listening on a loopback address, no otherwise).",
)
def serve(
    host: str,
    port: int,
    db_url: str | None,
    pool_size: int,
    log_level: str,
    max_future_skew: timedelta | None,
    private_webhooks: bool | None,
) -> None:
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
    # The port is taken before the one-time admin key is made: a key
    # printed by a server that then fails to bind would be lost for good.
    sock = _listen_or_exit(host, port)
    try:
        ledger = Ledger.open(db_url or default_ledger_url(), pool_size=pool_size)
    except BaseException:
        sock.close()
        raise
    new_key = bootstrap_admin_key(ledger, admin_key)
    if new_key:
        click.echo(f"admin key (shown once, store it now): {new_key}")
    click.echo(f"agentmeter serving {ledger!r} on http://{host}:{port}", err=True)
    run_server(
        ledger,
        host=host,
        port=port,
        admin_key=admin_key,
        log_level=log_level,
        max_future_skew=max_future_skew,
        sock=sock,
        private_webhooks=_is_loopback(host) if private_webhooks is None else private_webhooks,
    )


def _is_loopback(host: str) -> bool:
    import ipaddress

    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


def _listen_or_exit(host: str, port: int) -> socket.socket:
    from ..server import listen_socket

    try:
        return listen_socket(host, port)
    except OSError as exc:
        reason = (exc.strerror or str(exc)).lower()
        click.echo(f"error: cannot listen on {host}:{port}: {reason}", err=True)
        sys.exit(2)


def _future_skew(value: str) -> timedelta | None:
    if value.strip().lower() == "off":
        return None
    if not value.strip().isdigit():
        raise click.BadParameter(f"must be a whole number of seconds or 'off', got {value!r}")
    return timedelta(seconds=int(value))
