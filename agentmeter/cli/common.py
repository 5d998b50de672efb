"""What every subcommand shares: connection flags, the client, errors as exit codes.

Exit codes: 0 ok, 1 server/API error, 2 usage error. An error is one line
on stderr, never a traceback and never the key.
"""

from __future__ import annotations

import contextlib
import functools
import gc
import logging
import os
import re
import sys
from collections.abc import Callable, Iterator
from typing import TYPE_CHECKING, Any, NoReturn, TypeVar

import click

from ..errors import (
    AgentMeterConfigurationError,
    AgentMeterConnectionError,
    AgentMeterError,
    AgentMeterValidationError,
    scrub,
)

if TYPE_CHECKING:
    from ..client import AgentMeterClient

F = TypeVar("F", bound=Callable[..., Any])
CONNECTION_FLAGS = ("base_url", "api_key", "project_id", "db")
EXIT_API = 1
EXIT_USAGE = 2
EXIT_BROKEN_PIPE = 141  # 128 + SIGPIPE, what a shell reports for a writer whose reader left


def connection_options(func: F) -> F:
    """``--base-url --api-key --project-id --db``; else AGENTMETER_*; else the default ledger."""
    options = [
        click.option(
            "--db",
            "db",
            metavar="URL",
            help="Embedded ledger, e.g. sqlite:///ledger.db (no server).",
        ),
        click.option("--project-id", metavar="ID", help="Project (else AGENTMETER_PROJECT_ID)."),
        click.option("--api-key", metavar="KEY", help="API key (else AGENTMETER_API_KEY)."),
        click.option("--base-url", metavar="URL", help="Server URL (else AGENTMETER_BASE_URL)."),
    ]
    for option in options:
        func = option(func)
    return func


def make_client(
    base_url: str | None, api_key: str | None, project_id: str | None, db: str | None
) -> AgentMeterClient:
    if db and base_url:
        raise click.UsageError("give either --db or --base-url, not both")
    if db and db.startswith(("http://", "https://")):
        raise click.BadParameter(
            "--db takes a ledger URL (sqlite:///ledger.db); give a server with --base-url",
            param_hint="'--db'",
        )
    from ..client import AgentMeterClient  # on first use: `agentmeter --help` needs none of it

    return AgentMeterClient(api_key=api_key, project_id=project_id, base_url=db or base_url)


def secrets_of(api_key: str | None) -> tuple[str | None, ...]:
    """Every key this process may hold: the flag's and the environment's (Stripe's too)."""
    return (
        api_key,
        os.environ.get("AGENTMETER_API_KEY"),
        os.environ.get("AGENTMETER_ADMIN_KEY"),
        os.environ.get("STRIPE_API_KEY"),
    )


def silence_stdout() -> None:
    """Point stdout at /dev/null, so flushing it at exit cannot fail again."""
    try:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
    except (OSError, ValueError):
        pass


def one_line(message: str, secrets: tuple[str | None, ...] = ()) -> str:
    text = " ".join(scrub(message, secrets).split())
    return text or "unknown error"


def fail(message: str, code: int, secrets: tuple[str | None, ...] = ()) -> NoReturn:
    click.echo(f"error: {one_line(message, secrets)}", err=True)
    sys.exit(code)


class _OneLineWarnings(logging.Handler):
    """The library's warnings as ``warning: ...`` lines; retry chatter only when debugging."""

    def __init__(self, secrets: tuple[str | None, ...]) -> None:
        super().__init__(logging.WARNING)
        self.secrets = secrets

    def emit(self, record: logging.LogRecord) -> None:
        if record.module == "retry" and not os.environ.get("AGENTMETER_DEBUG"):
            return  # the final error says it all
        try:
            click.echo(f"warning: {one_line(record.getMessage(), self.secrets)}", err=True)
        except Exception:  # logging must never fail the command
            self.handleError(record)


@contextlib.contextmanager
def cli_logging(secrets: tuple[str | None, ...]) -> Iterator[None]:
    """While a command runs, the ``agentmeter`` logger writes one line per warning."""
    logger = logging.getLogger("agentmeter")
    handler = _OneLineWarnings(secrets)
    propagate = logger.propagate
    logger.addHandler(handler)
    logger.propagate = False
    try:
        yield
    finally:
        logger.removeHandler(handler)
        logger.propagate = propagate


def handle_errors(func: F) -> F:
    """Turn our errors into one line on stderr and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        secrets = secrets_of(kwargs.get("api_key"))
        try:
            with cli_logging(secrets):
                return func(*args, **kwargs)
        except (AgentMeterValidationError, AgentMeterConfigurationError) as exc:
            fail(str(exc), EXIT_USAGE, secrets)
        except AgentMeterConnectionError as exc:
            message = (
                str(exc) if kwargs.get("db") else connection_failure(exc, kwargs.get("base_url"))
            )
            fail(message, EXIT_API, secrets)
        except AgentMeterError as exc:
            fail(str(exc), EXIT_API, secrets)
        except BrokenPipeError:  # `agentmeter events ... | head`: the reader left
            silence_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except click.ClickException:
            raise  # usage errors: the command group prints them
        except OSError as exc:  # e.g. a ledger folder that cannot be created
            fail(os_failure(exc), EXIT_USAGE, secrets)
        except Exception as exc:  # here the key of the flag is known and masked
            if os.environ.get("AGENTMETER_DEBUG"):
                raise
            fail(unexpected(exc), EXIT_API, secrets)

    return wrapper  # type: ignore[return-value]


def unexpected(exc: BaseException) -> str:
    return f"unexpected {type(exc).__name__}: {exc} (AGENTMETER_DEBUG=1 shows the traceback)"


def os_failure(exc: OSError) -> str:
    where = f" ({exc.filename})" if exc.filename else ""
    return f"{exc.strerror or exc}{where}"


_REASONS = (
    (re.compile(r"refused", re.IGNORECASE), "connection refused"),
    (re.compile(r"timed? ?out", re.IGNORECASE), "timed out"),
    (
        re.compile(r"resolve|not known|name resolution|getaddrinfo|nodename", re.IGNORECASE),
        "name not resolved",
    ),
    (re.compile(r"reset|aborted|closed", re.IGNORECASE), "connection reset"),
    (re.compile(r"ssl|certificate", re.IGNORECASE), "TLS error"),
)


def connection_failure(exc: AgentMeterConnectionError, base_url_flag: str | None) -> str:
    """``cannot reach http://host:port (connection refused); check --base-url``."""
    from urllib.parse import urlsplit

    from ..config import DEFAULT_BASE_URL

    env_url = os.environ.get("AGENTMETER_BASE_URL")
    url = base_url_flag or env_url or DEFAULT_BASE_URL
    if not url.startswith(("http://", "https://")):
        return str(exc)  # a ledger database, not a server: its message says it all
    parts = urlsplit(url)
    reason = "timed out" if exc.timeout else "connection failed"
    for pattern, text in _REASONS:
        if pattern.search(str(exc)):
            reason = text
            break
    source = "--base-url" if base_url_flag else "AGENTMETER_BASE_URL" if env_url else None
    hint = (
        f"check {source}"
        if source
        else "the default server URL; set --base-url or AGENTMETER_BASE_URL"
    )
    return f"cannot reach {parts.scheme}://{parts.netloc} ({reason}); {hint}"


def ledger_to_read(base_url: str | None, db: str | None) -> str | None:
    """The ledger URL a read command would open (None when it talks to a server)."""
    target = db or base_url or os.environ.get("AGENTMETER_BASE_URL")
    if target is None:
        from ..transport.local import default_ledger_url

        return None if os.environ.get("AGENTMETER_API_KEY") else default_ledger_url()
    in_memory = target == "sqlite://" or ":memory:" in target or "mode=memory" in target
    if in_memory or target.startswith(("http://", "https://")):
        return None
    return target


def check_ledger_exists(url: str) -> None:
    """A command that only reads must not create a ledger (at a mistyped path, say)."""
    from ..ledger import Ledger

    Ledger.open(url, create=False).close()


# A command's answer without a client: (ledger URL, project, the command's
# options) -> True when it answered, False to take the client.
LedgerFastPath = Callable[[str, str, dict[str, Any]], bool]


def _with_client(
    func: Callable[..., Any], reads_only: bool, fast: LedgerFastPath | None = None
) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in CONNECTION_FLAGS}
        url = ledger_to_read(flags["base_url"], flags["db"])
        if reads_only and url is not None and not (flags["db"] and flags["base_url"]):
            if fast is not None and _named_ledger(flags) and fast(url, _project(flags), kwargs):
                return None
            check_ledger_exists(url)  # both --db and --base-url: make_client says so
        with make_client(**flags) as client:
            return func(*args, client=client, **kwargs)

    return wrapper


def uses_client(func: F) -> F:
    """The connection flags, error handling, and a ``client`` argument (closed after)."""
    return connection_options(handle_errors(_with_client(func, False)))  # type: ignore[return-value]


def reads_client(func: F) -> F:
    """:func:`uses_client` for a command that only reads: ``--db`` must name an existing file."""
    return connection_options(handle_errors(_with_client(func, True)))  # type: ignore[return-value]


def reads_ledger_or_client(fast: LedgerFastPath) -> Callable[[F], F]:
    """:func:`reads_client`, but a ledger named by URL is first offered to ``fast``:
    an answer read with the database's driver alone, which spares the command the
    client's start-up (see ``ledger/fast_reports.py``)."""

    def decorate(func: F) -> F:
        reading = _with_client(func, True, fast)
        return connection_options(handle_errors(reading))  # type: ignore[return-value]

    return decorate


@contextlib.contextmanager
def bulk_allocation() -> Iterator[None]:
    """No cyclic garbage collection while a command builds many small objects.

    A report of 21,600 rows makes about 100,000 tuples, lists and decimals,
    none in a cycle; each 700 of them start a collection that also walks every
    object the imports made. Pausing it took a tenth of the command's time
    (benchmarks.md, "CLI report"). Reference counting still frees everything.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


# Settings the client's config refuses when out of range: when set, only the
# client path can say so (its answer, error included, is the command's).
_CHECKED_SETTINGS = ("AGENTMETER_TIMEOUT", "AGENTMETER_RETRY_ATTEMPTS")


def _named_ledger(flags: dict[str, Any]) -> bool:
    """A ledger URL given, not the default file (whose use the client announces),
    and no setting the client would have to check first."""
    if any(os.environ.get(name) for name in _CHECKED_SETTINGS):
        return False
    return bool(flags["db"] or flags["base_url"] or os.environ.get("AGENTMETER_BASE_URL"))


def _project(flags: dict[str, Any]) -> str:
    """The project the client would read: the flag (``""`` too: it hides the
    variable), else AGENTMETER_PROJECT_ID, else the embedded default."""
    from ..transport.defaults import DEFAULT_PROJECT_ID

    chosen = flags["project_id"]
    if chosen is None:
        chosen = os.environ.get("AGENTMETER_PROJECT_ID")
    return chosen or DEFAULT_PROJECT_ID


def project_of(client: AgentMeterClient) -> str | None:
    """The project a command works on (None when neither flag nor default names one)."""
    return client.project_id or client.transport.default_project_id
