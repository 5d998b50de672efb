"""The reference server: ``agentmeter serve`` (FastAPI + uvicorn, extra ``server``).

>>> app = create_app(Ledger.open("sqlite:///ledger.db"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging

from ..errors import scrub
from ..ledger import Ledger, new_api_key
from .app import create_app

logger = logging.getLogger("agentmeter.server")


class _ScrubKeys(logging.Filter):
    """Masks keys in log records: a client that puts its key in a URL
    (``?api_key=...``) must not get it written to the access log."""

    def __init__(self, admin_key: str | None) -> None:
        super().__init__()
        self._secrets = (admin_key,)

    def filter(self, record: logging.LogRecord) -> bool:
        if isinstance(record.msg, str):
            record.msg = scrub(record.msg, self._secrets)
        if isinstance(record.args, tuple):
            record.args = tuple(
                scrub(arg, self._secrets) if isinstance(arg, str) else arg for arg in record.args
            )
        return True


def bootstrap_admin_key(ledger: Ledger, configured_key: str | None) -> str | None:
    """Make and store an admin key if there is none; return it so it can be shown once.

    With ``AGENTMETER_ADMIN_KEY`` set (``configured_key``) nothing is made:
    that key is the admin key, kept only in the environment.
    """
    if configured_key or ledger.has_admin_key():
        return None
    key = new_api_key("admin")
    ledger.add_key(key, "admin")
    return key


def serve(
    ledger: Ledger,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    admin_key: str | None = None,
    log_level: str = "info",
) -> None:
    """Serve ``ledger`` until interrupted, then close it."""
    import uvicorn

    app = create_app(ledger, admin_key=admin_key)
    # Config sets up uvicorn's loggers; the filters go on after it did.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, server_header=False)
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(_ScrubKeys(admin_key))
    server = uvicorn.Server(config)
    try:
        server.run()
    finally:
        ledger.close()
    if not server.started:  # e.g. the port is taken; uvicorn.run exits 3 then too
        raise SystemExit(3)


__all__ = ["bootstrap_admin_key", "create_app", "serve"]
