"""The ``agentmeter`` command group; each subcommand lives in its own module.

Errors, whatever raised them, end as one line on stderr and an exit code:
0 ok, 1 server/API error, 2 usage error (bad flag, bad date, bad amount).
``AGENTMETER_DEBUG=1`` shows the traceback of an unexpected error instead.
"""

from __future__ import annotations

import os
import sys
from collections.abc import Sequence
from typing import Any

import click

from .._version import __version__
from ..errors import AgentMeterConfigurationError, AgentMeterError, AgentMeterValidationError
from .common import (
    EXIT_API,
    EXIT_BROKEN_PIPE,
    EXIT_USAGE,
    fail,
    os_failure,
    secrets_of,
    silence_stdout,
    unexpected,
)
from .lazy import LazyCommand, LazyGroup

# Each command's module is imported only when the command runs (see lazy.py);
# the short helps are what `agentmeter --help` shows (a test checks them).
COMMANDS = {
    "alerts": LazyCommand(
        "webhooks:alerts", "When the project's alerts fire: meter threshold shares, spend limits."
    ),
    "billing": LazyCommand("billing:billing", "Make, list and settle billing records."),
    "events": LazyCommand(
        "events:events",
        "List stored events, newest first (table), or export them (json, csv, cloudevents).",
    ),
    "import": LazyCommand(
        "importer:import_events",
        "Load events from FILE (a CSV or JSON export of `agentmeter events`, or CloudEvents).",
    ),
    "ledger": LazyCommand("ledger:ledger", "Look after a ledger database directly (no server)."),
    "meter": LazyCommand(
        "meters:meter", "Read and change a user's meter: usage against a budget threshold."
    ),
    "outbox": LazyCommand(
        "outbox:outbox", "Inspect and replay the tracker's outbox of undelivered events."
    ),
    "prices": LazyCommand(
        "prices:prices", "A project's own model prices (per 1M tokens), in front of the catalog."
    ),
    "projects": LazyCommand("projects:projects", "Create and list projects."),
    "record": LazyCommand(
        "records:record", "Record one event: per API request, per token, or an instant charge."
    ),
    "report": LazyCommand(
        "report:report", "Usage and cost per period and group, with exact totals."
    ),
    "send": LazyCommand(
        "send:send",
        "Compose one event from a template, preview it (JSON and CloudEvent), and send it.",
    ),
    "serve": LazyCommand("serve:serve", "Serve the AgentMeter API."),
    "stats": LazyCommand(
        "stats:stats", "Totals over a recent timeframe: events, API calls, tokens, cost."
    ),
    "stripe": LazyCommand(
        "stripe_sync:stripe",
        "Send usage to Stripe as Billing Meter Events (works on the ledger database).",
    ),
    "summary": LazyCommand(
        "summary:summary",
        "Usage per user: events, API calls, tokens, cost, first and last event.",
    ),
    "webhooks": LazyCommand(
        "webhooks:webhooks",
        "Webhook endpoints that receive the project's alerts, and their deliveries.",
    ),
}

EXAMPLES = """
\b
Examples:
  agentmeter report --since 7d --group-by user            # the default ledger file
  agentmeter report --db sqlite:///ledger.db --granularity month --format csv -o usage.csv
  agentmeter stats --timeframe "7 days" --base-url http://127.0.0.1:8787 --api-key $KEY
  agentmeter events --user alice --limit 20
  agentmeter import usage.csv --db sqlite:///new.db
  agentmeter record api --user alice --agent search --api-calls 3 --unit-price 0.002
  agentmeter meter set --user alice --threshold 50
  agentmeter billing create --since 2025-01-01 --until 2025-02-01
  agentmeter webhooks add https://hooks.example.com/am --events project.spend_exceeded
  agentmeter alerts set --shares 50,80,100 --daily-limit 250
  agentmeter outbox replay
  agentmeter serve --db sqlite:///ledger.db --port 8787
  agentmeter stripe sync --since 2025-01-01 --until 2025-02-01   # a dry run

\b
Every subcommand takes the connection flags after its name: --base-url and
--api-key (a server), --project-id, or --db URL (an embedded ledger file);
else AGENTMETER_BASE_URL, AGENTMETER_API_KEY, AGENTMETER_PROJECT_ID; else
the embedded default ledger ~/.agentmeter/ledger.db.
Exit codes: 0 ok, 1 server or API error, 2 usage error.
"""


class AgentMeterGroup(LazyGroup):
    """A click group whose errors are one line on stderr, never a traceback."""

    def main(
        self,
        args: Sequence[str] | None = None,
        prog_name: str | None = None,
        complete_var: str | None = None,
        standalone_mode: bool = True,
        **extra: Any,
    ) -> Any:
        if not standalone_mode:
            return super().main(args, prog_name, complete_var, False, **extra)
        try:
            code = super().main(args, prog_name, complete_var, False, **extra)
        except click.exceptions.NoArgsIsHelpError as exc:
            if exc.ctx is not None:
                click.echo(exc.ctx.get_help())
            sys.exit(0)
        except click.UsageError as exc:
            hint = f" (see '{exc.ctx.command_path} --help')" if exc.ctx is not None else ""
            fail(f"{exc.format_message()}{hint}", EXIT_USAGE, secrets_of(None))
        except click.ClickException as exc:
            fail(exc.format_message(), exc.exit_code, secrets_of(None))
        except (click.Abort, KeyboardInterrupt):
            click.echo("aborted", err=True)
            sys.exit(130)
        except BrokenPipeError:  # `agentmeter events | head`: the reader left
            silence_stdout()
            sys.exit(EXIT_BROKEN_PIPE)
        except (AgentMeterValidationError, AgentMeterConfigurationError) as exc:
            fail(str(exc), EXIT_USAGE, secrets_of(None))  # e.g. serve on a file that is no ledger
        except AgentMeterError as exc:
            fail(str(exc), EXIT_API, secrets_of(None))
        except OSError as exc:
            fail(os_failure(exc), EXIT_USAGE, secrets_of(None))
        except Exception as exc:  # the last line of defence against tracebacks
            if os.environ.get("AGENTMETER_DEBUG"):
                raise
            fail(unexpected(exc), EXIT_API, secrets_of(None))
        sys.exit(code if isinstance(code, int) else 0)


@click.group(
    cls=AgentMeterGroup,
    lazy_commands=COMMANDS,
    epilog=EXAMPLES,
    context_settings={"help_option_names": ["-h", "--help"], "max_content_width": 100},
)
@click.version_option(__version__, prog_name="agentmeter")
def cli() -> None:
    """Meter and bill AI-agent usage: reports, exports, meters, billing, the server."""
