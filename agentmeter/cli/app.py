"""The ``agentmeter`` command group; each subcommand lives in its own module."""

from __future__ import annotations

import click

from .._version import __version__
from .projects import projects
from .serve import serve

EXAMPLES = """
\b
Examples:
  agentmeter serve --db sqlite:///ledger.db --port 8787
  agentmeter projects create "Acme agents" --base-url http://127.0.0.1:8787 --api-key $ADMIN_KEY
  agentmeter projects list --db sqlite:///ledger.db
"""


@click.group(epilog=EXAMPLES, context_settings={"help_option_names": ["-h", "--help"]})
@click.version_option(__version__, prog_name="agentmeter")
def cli() -> None:
    """Meter and bill AI-agent usage: run the server, manage projects."""


cli.add_command(serve)
cli.add_command(projects)
