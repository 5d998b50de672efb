"""The connections ``fast_reports.py`` reads through: the database's own driver,
opened from a ledger URL the way SQLAlchemy would open it, or not at all
(None) when the URL asks for more than this reads; the full path then opens it.
"""

from __future__ import annotations

import sqlite3
from pathlib import Path
from typing import Any
from urllib.parse import parse_qsl, unquote, urlsplit

Connection = tuple[Any, bool, tuple[type[Exception], ...]]  # driver's, PostgreSQL?, its errors


def open_sqlite(url: str) -> Connection | None:
    path = url.removeprefix("sqlite:///")
    if not path or any(mark in path for mark in "?%~:") or path.endswith("/"):
        return None  # memory, URIs, options, escapes: the full path reads those
    file = Path(path)
    if not file.is_file() or file.stat().st_size == 0:
        return None
    try:
        # Not "mode=ro": a read-only connection cannot remove the -wal and -shm
        # files when it closes last, as the ledger's own connections do.
        connection = sqlite3.connect(file, timeout=30)
        connection.execute("PRAGMA query_only = ON")
    except sqlite3.Error:
        return None
    return connection, False, (sqlite3.Error,)


def open_postgres(url: str) -> Connection | None:
    parts = urlsplit(url)
    options = parse_qsl(parts.query)
    names = [name for name, _ in options]
    if "," in parts.netloc or parts.fragment or len(set(names)) != len(names):
        return None  # several hosts, or a URL SQLAlchemy reads its own way
    try:
        import psycopg
        from psycopg.conninfo import make_conninfo
    except ImportError:
        return None
    try:
        settings = {
            "host": parts.hostname,
            "port": parts.port,
            "user": unquote(parts.username) if parts.username else None,
            "password": unquote(parts.password) if parts.password else None,
            "dbname": unquote(parts.path.removeprefix("/")) or None,
            "connect_timeout": 10,  # a host that never answers: the full path says so
            **dict(options),
        }
        # libpq's own keywords only: anything else is refused here (psycopg.Error)
        conninfo = make_conninfo("", **{name: value for name, value in settings.items() if value})
        connection = psycopg.connect(conninfo, autocommit=True)
    except (ValueError, psycopg.Error):
        return None
    if connection.info.encoding != "utf-8":  # text would come back as bytes
        connection.close()
        return None
    return connection, True, (psycopg.Error,)
