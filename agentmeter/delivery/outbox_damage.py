"""What the outbox does with what it cannot store or read back.

Three kinds of damage, each kept away from the intact events around it:

- an *event* that cannot be encoded (a non-finite float, a lone surrogate,
  a user object whose ``str()`` raises, nesting too deep for JSON);
- a *row* whose payload is not a JSON event with the row's id (garbage
  written by a bug, a crash, or a person);
- a *file* SQLite reports as damaged (overwritten pages, truncation, not a
  database at all).

Bad events and rows go to the outbox's ``quarantine`` table, kept byte for
byte (or, for an event that has no bytes, as its best-effort ``repr``) for
``agentmeter outbox list``. A damaged file is renamed aside, never
deleted: the rows still readable in it are copied to a fresh file first.
"""

from __future__ import annotations

import contextlib
import itertools
import os
import sqlite3
import time
import uuid
from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from ..core import jsonio as _json

# SQLite's primary result codes for a damaged file (extended codes keep
# them in the low byte).
_SQLITE_CORRUPT = 11
_SQLITE_NOTADB = 26


Problem = tuple[Any, str]  # an event (or its id) that cannot be kept, and why
Garbage = tuple[int, bytes, Any, str]  # an unreadable row: seq, raw id, raw payload, why


@dataclass(frozen=True)
class QuarantinedRow:
    """An event set aside because it could not be encoded or read back."""

    id: str
    reason: str
    quarantined_at: float
    payload: bytes


class DamagedFileError(sqlite3.DatabaseError):
    """``PRAGMA quick_check`` found the file damaged."""


def is_damage(exc: BaseException) -> bool:
    """Whether a SQLite error says the file itself is damaged (not busy, not full)."""
    if isinstance(exc, DamagedFileError):
        return True
    if not isinstance(exc, sqlite3.DatabaseError):
        return False
    code = getattr(exc, "sqlite_errorcode", None)
    if isinstance(code, int):
        return code & 0xFF in (_SQLITE_CORRUPT, _SQLITE_NOTADB)
    text = str(exc).lower()
    return "malformed" in text or "not a database" in text


def safe_text(text: str, limit: int = 500) -> str:
    """``text`` cut to ``limit`` characters, lone surrogates escaped (for SQLite and logs)."""
    return text[:limit].encode("utf-8", "backslashreplace").decode("utf-8")


def _describe_error(exc: BaseException) -> str:
    try:
        detail = str(exc)
    except Exception:
        detail = "(its message cannot be shown)"
    return safe_text(f"{type(exc).__name__}: {detail}", 300)


def encoding_problem(event: Any) -> str | None:
    """Why ``event`` cannot be stored or sent as JSON, or None if it can."""
    if not isinstance(event, dict):
        return f"is a {type(event).__name__}, not an event"
    if type(event.get("id")) is not str:
        return "has no text id"
    try:
        _json.dumps_bytes(event)  # the UTF-8 step refuses lone surrogates
    except Exception as exc:
        return "cannot be encoded as JSON: " + _describe_error(exc)
    return None


def quarantine_id(event: Any) -> str:
    """The id an unencodable event is filed under (its own, made printable)."""
    event_id = event.get("id") if isinstance(event, dict) else None
    if type(event_id) is str and event_id:
        return safe_text(event_id, 256)
    return f"unknown-{uuid.uuid4().hex}"


def describe_event(event: Any) -> bytes:
    """A best-effort text of an event that has no JSON form, for inspection."""
    try:
        text = repr(event)
    except Exception:
        text = _describe_fields(event)
    return safe_text(text, 100_000).encode("utf-8")


def _describe_fields(event: Any) -> str:
    if not isinstance(event, dict):
        return f"<unprintable {type(event).__name__}>"
    parts = []
    for key, value in event.items():
        try:
            parts.append(f"{key!r}: {value!r}")
        except Exception:
            parts.append(f"{key!r}: <unprintable {type(value).__name__}>")
    return "{" + ", ".join(parts) + "}"


def decoded_row(raw_id: bytes | None, raw_payload: bytes | None) -> tuple[Any, str | None]:
    """A claimed row's event, or why the row is not one (garbage, or another id)."""
    try:
        event = _json.loads(raw_payload) if raw_payload is not None else None
    except Exception as exc:  # invalid UTF-8 or JSON, or nested past the recursion limit
        return None, "payload is not JSON: " + _describe_error(exc)
    if not isinstance(event, dict):
        return None, "payload is not a JSON object"
    row_id = (raw_id or b"").decode("utf-8", "backslashreplace")
    if event.get("id") != row_id:
        return None, "payload's id does not match the row's id"
    return event, None


# ------------------------------------------------------ quarantine table


def sorted_rows(rows: list[Any]) -> tuple[list[tuple[int, Any]], list[Garbage]]:
    """Claimed rows split into (seq, event) and (seq, raw id, raw payload, why not)."""
    good, garbage = [], []
    for seq, raw_id, raw_payload in rows:
        event, problem = decoded_row(raw_id, raw_payload)
        if problem is None:
            good.append((seq, event))
        else:
            garbage.append((seq, raw_id or b"", raw_payload, problem))
    return good, garbage


def quarantine_rows(db: sqlite3.Connection, garbage: list[Garbage], now: float) -> list[Problem]:
    """Move unreadable rows to the quarantine; return (id, why) of each."""
    filed = []
    for seq, raw_id, raw_payload, problem in garbage:
        event_id = raw_id.decode("utf-8", "backslashreplace") or f"unknown-{uuid.uuid4().hex}"
        payload = raw_payload if raw_payload is not None else b""
        _file(db, event_id, payload, problem, now)
        db.execute("DELETE FROM outbox WHERE seq = ?", (seq,))
        filed.append((event_id, problem))
    return filed


def quarantine_events(
    db: sqlite3.Connection, bad: Sequence[Problem], now: float, *, in_outbox: bool
) -> list[Problem]:
    """File events under their ids; return the (id, why) of those not filed already.

    ``in_outbox``: the events were claimed from the outbox, so their rows go.
    Otherwise they were never stored, and a row with the same id is another
    (intact) copy that stays."""
    filed = []
    for event, problem in bad:
        event_id = quarantine_id(event)
        reason = safe_text(problem)
        payload = describe_event(event) if encoding_problem(event) else _json.dumps_bytes(event)
        if _file(db, event_id, payload, reason, now):
            filed.append((event_id, reason))
        if in_outbox:
            db.execute("DELETE FROM outbox WHERE id = ?", (event_id,))
    return filed


def _file(db: sqlite3.Connection, event_id: str, payload: bytes, reason: str, now: float) -> bool:
    """Keep ``payload`` in the quarantine; False if these very bytes are there already.

    Other bytes under the same id are never overwritten: the newcomer is filed
    as ``id#2``, ``id#3``, ..."""
    for copy in itertools.count(1):
        key = event_id if copy == 1 else f"{event_id}#{copy}"
        found = db.execute(
            "SELECT CAST(payload AS BLOB) FROM quarantine WHERE id = ?", (key,)
        ).fetchone()
        if found is None:
            db.execute(
                "INSERT INTO quarantine (id, payload, reason, quarantined_at) VALUES (?, ?, ?, ?)",
                (key, payload, reason, now),
            )
            return True
        if bytes(found[0]) == payload:
            return False
    raise AssertionError("unreachable")  # itertools.count never ends


def count_quarantined(db: sqlite3.Connection) -> int:
    rows = _rows_if_any(db, "SELECT COUNT(*) FROM quarantine", ())
    return int(rows[0][0]) if rows else 0


def list_quarantined(db: sqlite3.Connection, limit: int | None) -> list[QuarantinedRow]:
    rows = _rows_if_any(
        db,
        "SELECT id, reason, quarantined_at, CAST(payload AS BLOB) FROM quarantine"
        " ORDER BY quarantined_at, id LIMIT ?",
        (-1 if limit is None else limit,),
    )
    return [QuarantinedRow(str(row[0]), str(row[1]), float(row[2]), row[3]) for row in rows]


def requeue(db: sqlite3.Connection, ids: Sequence[str] | None, now: float) -> int:
    """Move quarantined events (all, or these) back to the outbox; return how many.

    One whose id the outbox holds already stays in the quarantine."""
    moved = 0
    for event_id in _chosen_ids(db, ids):
        cursor = db.execute(
            "INSERT OR IGNORE INTO outbox (id, payload, created_at)"
            " SELECT id, payload, ? FROM quarantine WHERE id = ?",
            (now, event_id),
        )
        if cursor.rowcount == 1:
            db.execute("DELETE FROM quarantine WHERE id = ?", (event_id,))
            moved += 1
    return moved


def drop(db: sqlite3.Connection, ids: Sequence[str] | None) -> int:
    """Delete quarantined events (all, or these); return how many."""
    chosen = _chosen_ids(db, ids)
    before = db.total_changes
    db.executemany("DELETE FROM quarantine WHERE id = ?", [(event_id,) for event_id in chosen])
    return db.total_changes - before


def _rows_if_any(db: sqlite3.Connection, statement: str, parameters: tuple[Any, ...]) -> list[Any]:
    """A quarantine query's rows; none from a file older than the quarantine (read-only)."""
    try:
        return db.execute(statement, parameters).fetchall()
    except sqlite3.OperationalError as exc:
        if "no such table" not in str(exc):
            raise
        return []


def _chosen_ids(db: sqlite3.Connection, ids: Sequence[str] | None) -> list[str]:
    if ids is not None:
        return list(ids)
    return [row[0] for row in db.execute("SELECT id FROM quarantine")]


# ---------------------------------------------------------------- the file


def check_readable(connection: sqlite3.Connection) -> None:
    """Raise :class:`DamagedFileError` unless SQLite finds every page sound."""
    findings = [row[0] for row in connection.execute("PRAGMA quick_check")]
    if findings != ["ok"]:
        raise DamagedFileError("; ".join(str(finding) for finding in findings[:3]))


Salvaged = tuple[str, Any, float, Any, Any]  # id, payload, created_at, claimed_by, claimed_until


def set_aside(path: Path) -> tuple[Path, list[Salvaged]]:
    """Copy out the readable rows of a damaged outbox, then rename it (and its
    WAL files, which belong to it) aside. Returns the new name and the rows."""
    rows = list(_salvage(path))
    stamp = time.strftime("%Y%m%dT%H%M%SZ", time.gmtime())
    aside = path.with_name(f"{path.name}.corrupt-{stamp}-{uuid.uuid4().hex[:6]}")
    os.replace(path, aside)
    for suffix in ("-wal", "-shm"):
        companion = Path(f"{path}{suffix}")
        if companion.exists():
            os.replace(companion, Path(f"{aside}{suffix}"))
    return aside, rows


def restore(db: sqlite3.Connection, rows: list[Salvaged]) -> None:
    """Put salvaged rows in a fresh outbox; claims in flight stay claimed (no resend)."""
    db.executemany(
        "INSERT OR IGNORE INTO outbox (id, payload, created_at, claimed_by, claimed_until)"
        " VALUES (?, ?, ?, ?, ?)",
        [(row[0], _as_text(row[1]), *row[2:]) for row in rows],
    )


def inode(path: Path) -> int | None:
    """Which file ``path`` names now (None if none): tells whether another process replaced it."""
    try:
        return path.stat().st_ino
    except OSError:
        return None


def _as_text(payload: Any) -> Any:
    """A salvaged payload as text when it is valid UTF-8, else as the bytes found."""
    if isinstance(payload, bytes):
        with contextlib.suppress(UnicodeDecodeError):
            return payload.decode("utf-8")
    return payload


def _salvage(path: Path) -> Iterator[Salvaged]:
    """Rows in sequence order, stepping over unreadable pages."""
    try:
        connection = sqlite3.connect(path, timeout=5, isolation_level=None)
        # Trust the file's real size over its header (a truncated file), and
        # read what can be read; nothing is written through this connection.
        connection.execute("PRAGMA writable_schema=ON")
    except sqlite3.Error:
        return
    try:
        wanted, top = 1, _highest_seq(connection)  # wanted: the lowest seq not read
        while wanted <= top:
            rows = _rows_from(connection, wanted, 256) or _rows_from(connection, wanted, 1)
            if rows is None:  # the page holding this key is unreadable: step past it
                wanted = _next_readable(connection, wanted, top)
                continue
            if not rows:
                return
            for _seq, raw_id, payload, created_at, claimed_by, claimed_until in rows:
                event_id = (raw_id or b"").decode("utf-8", "backslashreplace")
                created = created_at if isinstance(created_at, float) else time.time()
                yield event_id, payload, created, claimed_by, claimed_until
            wanted = rows[-1][0] + 1
    finally:
        connection.close()


def _next_readable(connection: sqlite3.Connection, unreadable: int, top: int) -> int:
    """The lowest seq above ``unreadable`` from which rows can be read (``top + 1`` if none).

    A damaged page hides a range of keys; a long-used outbox's live rows may
    start hundreds of thousands of keys past it. Steps double until a read
    succeeds, then a bisection finds where the damage ends: O(log top) reads.
    """

    def readable(seq: int) -> bool:
        return _rows_from(connection, seq, 1) is not None

    bad, step = unreadable, 1
    while True:
        probe = min(unreadable + step, top)
        if readable(probe):
            break
        if probe == top:
            return top + 1
        bad, step = probe, step * 2
    while probe - bad > 1:  # the first readable key lies in (bad, probe]
        middle = (bad + probe) // 2
        if readable(middle):
            probe = middle
        else:
            bad = middle
    return probe


def _rows_from(connection: sqlite3.Connection, lowest: int, count: int) -> list[Any] | None:
    """Up to ``count`` rows from seq ``lowest`` on, or None if a page on the way is unreadable."""
    try:
        return connection.execute(
            "SELECT seq, CAST(id AS BLOB), CAST(payload AS BLOB), created_at, claimed_by,"
            " claimed_until FROM outbox WHERE seq >= ? ORDER BY seq LIMIT ?",
            (lowest, count),
        ).fetchall()
    except sqlite3.DatabaseError:
        return None


def _highest_seq(connection: sqlite3.Connection) -> int:
    """The highest sequence number ever given out, or 0 if none can be read."""
    for query in (
        "SELECT seq FROM sqlite_sequence WHERE name = 'outbox'",
        "SELECT MAX(seq) FROM outbox",
    ):
        try:
            row = connection.execute(query).fetchone()
        except sqlite3.DatabaseError:
            continue
        if row is not None and isinstance(row[0], int):
            return row[0]
    return 0
