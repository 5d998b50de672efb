"""What every subcommand shares: connection flags, the client, errors as exit codes.

Exit codes: 0 ok, 1 server/API error, 2 usage error. An error is one line
on stderr, never a traceback and never the key.
"""

from __future__ import annotations

import contextlib
import functools
import logging
import os
import sys
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, NoReturn, TypeVar

import click

from ..client import AgentMeterClient
from ..errors import (
    AgentMeterConfigurationError,
    AgentMeterError,
    AgentMeterValidationError,
    scrub,
)

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
    return AgentMeterClient(api_key=api_key, project_id=project_id, base_url=db or base_url)


def secrets_of(api_key: str | None) -> tuple[str | None, ...]:
    """Every key this process may hold: the flag's and the environment's."""
    return (api_key, os.environ.get("AGENTMETER_API_KEY"), os.environ.get("AGENTMETER_ADMIN_KEY"))


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
        except AgentMeterError as exc:
            fail(str(exc), EXIT_API, secrets)
        except BrokenPipeError:  # `agentmeter events ... | head`: the reader left
            silence_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except click.ClickException:
            raise  # usage errors: the command group prints them
        except Exception as exc:  # here the key of the flag is known and masked
            if os.environ.get("AGENTMETER_DEBUG"):
                raise
            fail(unexpected(exc), EXIT_API, secrets)

    return wrapper  # type: ignore[return-value]


def unexpected(exc: BaseException) -> str:
    return f"unexpected {type(exc).__name__}: {exc} (AGENTMETER_DEBUG=1 shows the traceback)"


def check_ledger_exists(db: str | None) -> None:
    """A command that only reads must not create an empty ledger at a mistyped path."""
    if not db or not db.startswith("sqlite:///") or ":memory:" in db or "mode=memory" in db:
        return
    path = Path(db.removeprefix("sqlite:///").split("?", 1)[0]).expanduser()
    if not path.exists():
        raise click.BadParameter(f"no ledger file at {path}", param_hint="'--db'")


def _with_client(func: Callable[..., Any], reads_only: bool) -> Callable[..., Any]:
    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        flags = {name: kwargs.pop(name) for name in CONNECTION_FLAGS}
        if reads_only and not flags["base_url"]:  # both at once: make_client says so
            check_ledger_exists(flags["db"])
        with make_client(**flags) as client:
            return func(*args, client=client, **kwargs)

    return wrapper


def uses_client(func: F) -> F:
    """The connection flags, error handling, and a ``client`` argument (closed after)."""
    return connection_options(handle_errors(_with_client(func, False)))  # type: ignore[return-value]


def reads_client(func: F) -> F:
    """:func:`uses_client` for a command that only reads: ``--db`` must name an existing file."""
    return connection_options(handle_errors(_with_client(func, True)))  # type: ignore[return-value]


def project_of(client: AgentMeterClient) -> str | None:
    """The project a command works on (None when neither flag nor default names one)."""
    return client.project_id or client.transport.default_project_id
