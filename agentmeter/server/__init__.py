"""The reference server: ``agentmeter serve`` (FastAPI + uvicorn, extra ``server``).

>>> app = create_app(Ledger.open("sqlite:///ledger.db"))  # doctest: +SKIP
"""

from __future__ import annotations

import logging
import socket
from collections.abc import Mapping
from datetime import timedelta

from ..errors import scrub
from ..ledger import Ledger, new_api_key
from ..ledger.admission import DEFAULT_MAX_FUTURE_SKEW
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
            record.args = tuple(self._scrubbed(arg) for arg in record.args)
        elif isinstance(record.args, Mapping):
            record.args = {name: self._scrubbed(arg) for name, arg in record.args.items()}
        return True

    def _scrubbed(self, arg: object) -> object:
        # Percent-encoded keys (?authorization=Bearer%20am_proj_...) are
        # decoded by scrub before matching.
        return scrub(arg, self._secrets) if isinstance(arg, str) else arg


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


def listen_socket(host: str, port: int) -> socket.socket:
    """Bind and listen on ``host:port`` now, before any admin key is made.

    Raises :class:`OSError` (``EADDRINUSE`` for a busy port); nothing else
    has happened then, so a one-time key is never shown for a server that
    cannot start.
    """
    family = socket.AF_INET6 if ":" in host else socket.AF_INET
    # IPPROTO_TCP, not 0: asyncio sets TCP_NODELAY only on sockets whose proto
    # says TCP, and without it every answer waits out a delayed ACK (~40 ms).
    sock = socket.socket(family, socket.SOCK_STREAM, socket.IPPROTO_TCP)
    try:
        sock.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        sock.bind((host, port))
        sock.listen(2048)
    except OSError:
        sock.close()
        raise
    sock.set_inheritable(True)
    return sock


def serve(
    ledger: Ledger,
    *,
    host: str = "127.0.0.1",
    port: int = 8787,
    admin_key: str | None = None,
    log_level: str = "info",
    max_future_skew: timedelta | None = DEFAULT_MAX_FUTURE_SKEW,
    sock: socket.socket | None = None,
    private_webhooks: bool = True,
) -> None:
    """Serve ``ledger`` until interrupted, then close it; send its webhooks meanwhile.

    ``sock`` is a socket from :func:`listen_socket`; without it the
    address is bound here. ``private_webhooks``: whether webhook endpoints
    may be private or loopback addresses.
    """
    import uvicorn

    from .webhook_sender import SenderSettings, WebhookSender

    app = create_app(
        ledger,
        admin_key=admin_key,
        max_future_skew=max_future_skew,
        private_webhooks=private_webhooks,
    )
    sender = WebhookSender(ledger, SenderSettings.from_environment(private_webhooks))
    # Config sets up uvicorn's loggers; the filters go on after it did.
    config = uvicorn.Config(app, host=host, port=port, log_level=log_level, server_header=False)
    for name in ("uvicorn.access", "uvicorn.error"):
        logging.getLogger(name).addFilter(_ScrubKeys(admin_key))
    server = uvicorn.Server(config)
    sender.start()
    try:
        listening = sock or listen_socket(host, port)
        with listening:
            server.run(sockets=[listening])
    finally:
        sender.stop()
        ledger.close()
    if not server.started:
        raise SystemExit(3)


__all__ = ["bootstrap_admin_key", "create_app", "listen_socket", "serve"]
