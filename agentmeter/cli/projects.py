"""``agentmeter projects``: create and list projects (admin key, or an embedded ledger)."""

from __future__ import annotations

import click

from .common import (
    check_ledger_exists,
    connection_options,
    handle_errors,
    ledger_to_read,
    make_client,
)


@click.group(
    epilog="""
\b
Examples:
  agentmeter projects create "Acme agents" --base-url http://127.0.0.1:8787 --api-key $ADMIN_KEY
  agentmeter projects list --db sqlite:///ledger.db
"""
)
def projects() -> None:
    """Create and list projects."""


@projects.command(
    "create",
    epilog="""
\b
Examples:
  agentmeter projects create "Acme agents" --base-url http://127.0.0.1:8787 --api-key $ADMIN_KEY
  agentmeter projects create shop --id proj_shop --db sqlite:///ledger.db
""",
)
@click.argument("name")
@click.option("--description", help="Free text.")
@click.option("--id", "new_id", metavar="ID", help="Choose the project id (default: generated).")
@connection_options
@handle_errors
def create(
    name: str,
    description: str | None,
    new_id: str | None,
    base_url: str | None,
    api_key: str | None,
    project_id: str | None,
    db: str | None,
) -> None:
    """Create a project and print its id and key (the key is shown only this once)."""
    with make_client(base_url, api_key, project_id, db) as client:
        project = client.create_project(name, description=description, project_id=new_id)
    click.echo(f"project id: {project.id}")
    if project.api_key is not None:
        click.echo(f"project key (shown once, store it now): {project.api_key.get_secret_value()}")


@projects.command(
    "list", epilog="\b\nExamples:\n  agentmeter projects list --db sqlite:///ledger.db"
)
@connection_options
@handle_errors
def list_(
    base_url: str | None, api_key: str | None, project_id: str | None, db: str | None
) -> None:
    """List projects (an admin key sees all; a project key its own)."""
    url = ledger_to_read(base_url, db)
    if url is not None and not (db and base_url):
        check_ledger_exists(url)
    with make_client(base_url, api_key, project_id, db) as client:
        for project in client.list_projects():
            click.echo(f"{project.id}\t{project.name}\t{project.description or ''}")
