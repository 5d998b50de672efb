"""``agentmeter outbox status|replay``: events the tracker could not deliver yet.

The outbox is the tracker's SQLite spool (see :mod:`agentmeter.outbox`).
``--outbox PATH`` names the file; else it is the default outbox of the
client the connection flags make (one file per server and key). ``replay``
claims rows in batches (rows a running tracker has claimed are left to it),
sends them, and forgets the delivered and the rejected ones; on a server
failure it gives the batch back and exits 1. Replaying twice is harmless:
the server stores each event id once.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, TypeVar

import click

from ..client import AgentMeterClient
from ..errors import AgentMeterError
from ..outbox import Outbox, outbox_for
from .common import (
    EXIT_API,
    EXIT_USAGE,
    connection_options,
    fail,
    handle_errors,
    make_client,
    one_line,
)
from .common import secrets_of as key_secrets
from .output import count_text, dump_json, progress_bar

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = """
\b
Examples:
  agentmeter outbox status
  agentmeter outbox status --outbox ~/.agentmeter/outbox-1a2b3c4d5e6f7a8b.db
  agentmeter outbox replay --base-url https://meter.example.com --api-key $KEY
"""


def outbox_option(func: F) -> F:
    return click.option(
        "--outbox",
        "path",
        type=click.Path(dir_okay=False, path_type=Path),
        help="The outbox file (default: the one of the server and key given).",
    )(func)


def _locate(path: Path | None, flags: dict[str, Any]) -> Path:
    if path is not None:
        return path.expanduser()
    with make_client(**flags) as client:
        return outbox_for(client).path


@contextlib.contextmanager
def _opened(where: Path) -> Iterator[Outbox]:
    """The outbox at ``where``; a file that is not one is a usage error."""
    spool = Outbox(where)
    try:
        yield spool
    except sqlite3.DatabaseError as exc:
        fail(f"cannot read the outbox {where}: {exc}", EXIT_USAGE)
    finally:
        spool.close()


@click.group(epilog=EXAMPLES)
def outbox() -> None:
    """Inspect and replay the tracker's outbox of undelivered events."""


@outbox.command("status", epilog="\b\nExamples:\n  agentmeter outbox status --format json")
@outbox_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@connection_options
@handle_errors
def outbox_status(
    path: Path | None,
    fmt: str,
    base_url: str | None,
    api_key: str | None,
    project_id: str | None,
    db: str | None,
) -> None:
    """How many events wait in the outbox."""
    flags = {"base_url": base_url, "api_key": api_key, "project_id": project_id, "db": db}
    where = _locate(path, flags)
    pending = 0
    if where.exists():
        with _opened(where) as spool:
            pending = spool.pending()
    if fmt == "json":
        click.echo(dump_json({"outbox": str(where), "exists": where.exists(), "pending": pending}))
        return
    state = "" if where.exists() else " (no file yet)"
    click.echo(f"outbox: {where}{state}")
    click.echo(f"pending events: {count_text(pending)}")


@outbox.command(
    "replay",
    epilog="\b\nExamples:\n  agentmeter outbox replay\n"
    "  agentmeter outbox replay --outbox /var/spool/am.db --base-url http://127.0.0.1:8787",
)
@outbox_option
@click.option(
    "--batch-size",
    type=click.IntRange(1, 1000),
    default=500,
    show_default=True,
    help="Events per request.",
)
@connection_options
@handle_errors
def outbox_replay(
    path: Path | None,
    batch_size: int,
    base_url: str | None,
    api_key: str | None,
    project_id: str | None,
    db: str | None,
) -> None:
    """Send the outbox's events now (a progress bar on a terminal)."""
    with make_client(base_url, api_key, project_id, db) as client:
        where = path.expanduser() if path is not None else outbox_for(client).path
        if not where.exists():
            click.echo(f"outbox: {where} (no file): nothing to replay")
            return
        with _opened(where) as spool:
            result = _replay(client, spool, batch_size, key_secrets(api_key))
    delivered, duplicates, rejected, left = result
    click.echo(
        f"replayed {count_text(delivered + duplicates)} events from {where}: "
        f"{count_text(delivered)} new, {count_text(duplicates)} already stored, "
        f"{count_text(rejected)} rejected; {count_text(left)} left"
    )


def _replay(
    client: AgentMeterClient, spool: Outbox, batch_size: int, secrets: tuple[str | None, ...]
) -> tuple[int, int, int, int]:
    delivered = duplicates = rejected = 0
    with progress_bar() as progress:
        task = progress.add_task("replaying outbox", total=spool.pending())
        while True:
            batch = spool.claim(batch_size)
            if not batch:
                break
            ids = [str(event["id"]) for event in batch]
            try:
                answer = client.send_batch(batch)
            except AgentMeterError as exc:
                spool.release(ids)
                sent = delivered + duplicates + rejected
                click.echo(
                    f"error: replay stopped after {count_text(sent)} events, the rest stay in "
                    f"the outbox: {one_line(str(exc), secrets)}",
                    err=True,
                )
                raise SystemExit(EXIT_API) from None
            for item in answer.rejected:
                event_id = item.id or ids[item.index]
                click.echo(
                    f"rejected {event_id}: {one_line(item.error.message, secrets)}", err=True
                )
            spool.ack(ids)  # delivered, duplicate, or finally rejected: done either way
            delivered += answer.accepted
            duplicates += answer.duplicates
            rejected += len(answer.rejected)
            progress.advance(task, len(batch))
    return delivered, duplicates, rejected, spool.pending()
