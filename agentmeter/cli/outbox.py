"""``agentmeter outbox status|replay|list|requeue|drop``: events the tracker could not deliver yet.

The outbox is the tracker's SQLite spool (see :mod:`agentmeter.delivery.outbox`).
``--outbox PATH`` names the file; else it is the default outbox of the
client the connection flags make (one file per server and key). ``replay``
claims rows in batches (rows a running tracker has claimed are left to it),
sends them, and forgets the delivered and the rejected ones; on a server
failure it gives the batch back and exits 1. Replaying twice is harmless:
the server stores each event id once.

Events that could not be encoded or read back sit in the outbox's
quarantine: ``list`` shows them, ``requeue`` puts them back in line, ``drop``
deletes them. The reading commands (``status``, ``list``) never create a
file, and no command writes to a database that is not an outbox.
"""

from __future__ import annotations

import contextlib
import sqlite3
from collections.abc import Callable, Iterator
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, TypeVar

import click

from ..client import AgentMeterClient
from ..delivery.outbox import Outbox, QuarantinedRow, outbox_for
from ..errors import AgentMeterError
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
from .output import (
    Column,
    TextTable,
    count_text,
    dump_json,
    plural,
    print_table,
    progress_bar,
    time_text,
)

F = TypeVar("F", bound=Callable[..., Any])

EXAMPLES = """
\b
Examples:
  agentmeter outbox status
  agentmeter outbox status --outbox ~/.agentmeter/outbox-1a2b3c4d5e6f7a8b.db
  agentmeter outbox replay --base-url https://meter.example.com --api-key $KEY
  agentmeter outbox list
  agentmeter outbox requeue --all
"""
PAYLOAD_PREVIEW = 80  # characters of a quarantined payload shown in the table


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
def _opened(where: Path, *, writes: bool = False) -> Iterator[Outbox]:
    """The outbox at ``where``; a file that is not one (or is damaged) is a usage error.
    Reading commands open it read-only: they never create or change a file."""
    spool = Outbox(where, repair=False, read_only=not writes)
    try:
        yield spool
    except sqlite3.DatabaseError as exc:
        fail(f"cannot read the outbox {where}: {exc}", EXIT_USAGE)
    finally:
        spool.close()


def _has_file(where: Path) -> bool:
    return where.is_file() and where.stat().st_size > 0


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
    """How many events wait in the outbox (and how many are quarantined)."""
    flags = {"base_url": base_url, "api_key": api_key, "project_id": project_id, "db": db}
    where = _locate(path, flags)
    exists = _has_file(where)
    pending = quarantined = 0
    if exists:
        with _opened(where) as spool:
            pending, quarantined = spool.pending(), spool.quarantined_count()
    if fmt == "json":
        document = {"outbox": str(where), "exists": exists, "pending": pending}
        click.echo(dump_json({**document, "quarantined": quarantined}))
        return
    state = "" if exists else " (no file yet)"
    click.echo(f"outbox: {where}{state}")
    click.echo(f"pending events: {count_text(pending)}")
    click.echo(f"quarantined events: {count_text(quarantined)}")


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
        if not _has_file(where):
            click.echo(f"outbox: {where} (no file): nothing to replay")
            return
        with _opened(where, writes=True) as spool:
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


# ------------------------------------------------------------ quarantine


@outbox.command(
    "list",
    epilog="\b\nExamples:\n  agentmeter outbox list\n  agentmeter outbox list --format json",
)
@outbox_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text")
@click.option("--limit", type=click.IntRange(1), default=None, help="Show at most this many.")
@connection_options
@handle_errors
def outbox_list(
    path: Path | None,
    fmt: str,
    limit: int | None,
    base_url: str | None,
    api_key: str | None,
    project_id: str | None,
    db: str | None,
) -> None:
    """The quarantined events: ones that could not be encoded or read back."""
    flags = {"base_url": base_url, "api_key": api_key, "project_id": project_id, "db": db}
    where = _locate(path, flags)
    rows: list[QuarantinedRow] = []
    if _has_file(where):
        with _opened(where) as spool:
            rows = spool.quarantined(limit)
    if fmt == "json":
        click.echo(dump_json([_row_document(row) for row in rows]))
        return
    if not rows:
        click.echo(f"no quarantined events in {where}")
        return
    table = TextTable(
        [Column("id"), Column("quarantined at"), Column("reason"), Column("payload")],
        title=f"quarantined events in {where}",
    )
    for row in rows:
        document = _row_document(row)
        preview = " ".join(document["payload"].split())[:PAYLOAD_PREVIEW]
        table.add_row(row.id, document["quarantined_at"], row.reason, preview)
    print_table(table, None)


def _row_document(row: QuarantinedRow) -> dict[str, str]:
    moment = datetime.fromtimestamp(row.quarantined_at, tz=timezone.utc)
    return {
        "id": row.id,
        "quarantined_at": time_text(moment),
        "reason": row.reason,
        "payload": row.payload.decode("utf-8", "backslashreplace"),
    }


def _chosen(ids: tuple[str, ...], everything: bool) -> list[str] | None:
    if bool(ids) == everything:
        raise click.UsageError("name the quarantined event ids, or give --all")
    return None if everything else list(ids)


def _change_quarantine(
    path: Path | None, connection: dict[str, Any], change: Callable[[Outbox], int]
) -> tuple[int, Path]:
    """Apply ``change`` to the outbox's quarantine; how many rows it touched, and where."""
    where = _locate(path, connection)
    if not _has_file(where):
        return 0, where
    with _opened(where, writes=True) as spool:
        return change(spool), where


def _quarantine_options(func: F) -> F:
    func = handle_errors(func)
    func = connection_options(func)
    func = click.option("--all", "everything", is_flag=True, help="Every quarantined event.")(func)
    func = click.argument("ids", nargs=-1)(func)
    return outbox_option(func)


@outbox.command(
    "requeue",
    epilog="\b\nExamples:\n  agentmeter outbox requeue --all\n  agentmeter outbox requeue ID",
)
@_quarantine_options
def outbox_requeue(
    path: Path | None,
    ids: tuple[str, ...],
    everything: bool,
    base_url: str | None,
    api_key: str | None,
    project_id: str | None,
    db: str | None,
) -> None:
    """Put quarantined events back in line, to be sent on the next replay."""
    chosen = _chosen(ids, everything)
    connection = {"base_url": base_url, "api_key": api_key, "project_id": project_id, "db": db}
    moved, where = _change_quarantine(path, connection, lambda spool: spool.requeue(chosen))
    click.echo(f"requeued {plural(moved, 'event')} in {where}")


@outbox.command(
    "drop", epilog="\b\nExamples:\n  agentmeter outbox drop ID\n  agentmeter outbox drop --all"
)
@_quarantine_options
def outbox_drop(
    path: Path | None,
    ids: tuple[str, ...],
    everything: bool,
    base_url: str | None,
    api_key: str | None,
    project_id: str | None,
    db: str | None,
) -> None:
    """Delete quarantined events for good."""
    chosen = _chosen(ids, everything)
    connection = {"base_url": base_url, "api_key": api_key, "project_id": project_id, "db": db}
    dropped, where = _change_quarantine(path, connection, lambda spool: spool.drop(chosen))
    click.echo(f"dropped {plural(dropped, 'quarantined event')} from {where}")
