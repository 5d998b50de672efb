"""What every subcommand shares: connection flags, the client, errors as exit codes.

Exit codes: 0 ok, 1 server/API error, 2 usage error. An error is one line
on stderr, never a traceback and never the key.
"""

from __future__ import annotations

import functools
import sys
from collections.abc import Callable
from typing import Any, TypeVar

import click

from ..client import AgentMeterClient
from ..errors import (
    AgentMeterConfigurationError,
    AgentMeterError,
    AgentMeterValidationError,
    scrub,
)

F = TypeVar("F", bound=Callable[..., Any])


def connection_options(func: F) -> F:
    """``--base-url --api-key --project-id --db``; else AGENTMETER_*; else the default ledger."""
    options = [
        click.option(
            "--db", "db", metavar="URL", help="Embedded ledger, e.g. sqlite:///ledger.db."
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
    return AgentMeterClient(api_key=api_key, project_id=project_id, base_url=db or base_url)


def fail(message: str, code: int, secrets: tuple[str | None, ...] = ()) -> None:
    click.echo(f"error: {scrub(message, secrets)}", err=True)
    sys.exit(code)


def handle_errors(func: F) -> F:
    """Turn our errors into one line on stderr and the documented exit code."""

    @functools.wraps(func)
    def wrapper(*args: Any, **kwargs: Any) -> Any:
        key = kwargs.get("api_key")
        try:
            return func(*args, **kwargs)
        except (AgentMeterValidationError, AgentMeterConfigurationError) as exc:
            fail(str(exc), 2, (key,))
        except AgentMeterError as exc:
            fail(str(exc), 1, (key,))
        return None

    return wrapper  # type: ignore[return-value]
