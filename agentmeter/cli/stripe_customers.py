"""``agentmeter stripe map``, ``unmap`` and ``mappings``: which Stripe customer a user is.

A mapped user's usage is billed to the mapped customer; an unmapped one's
to the ``stripe_customer_id`` metadata of their most recent event that has
one; a user with neither is listed by ``stripe sync`` and never sent.
The map is a ledger table, per project.
"""

from __future__ import annotations

import sys
from typing import Any

import click

from ..ledger import Ledger
from .common import EXIT_API, handle_errors
from .output import Column, TextTable, dump_json, print_table
from .stripe_usage import is_customer_id

DEFAULT_PROJECT = "default"


def db_option(func: Any) -> Any:
    return click.option(
        "--db", "db_url", metavar="URL", help="Ledger database (default: the embedded file)."
    )(func)


def project_option(func: Any) -> Any:
    return click.option(
        "--project-id",
        metavar="ID",
        envvar="AGENTMETER_PROJECT_ID",
        default=DEFAULT_PROJECT,
        show_default=True,
        help="Project (else AGENTMETER_PROJECT_ID).",
    )(func)


def open_ledger(db_url: str | None) -> Ledger:
    from ..transport.local import default_ledger_url

    return Ledger.open(db_url or default_ledger_url(), create=False)


# -------------------------------------------------------------- the map


@click.command(
    name="map",
    epilog="""
\b
Examples:
  agentmeter stripe map alice cus_NciAYcXfLnqBoz
  agentmeter stripe map alice cus_NciAYcXfLnqBoz --db sqlite:///ledger.db --project-id proj_1
""",
)
@click.argument("user_id")
@click.argument("customer_id")
@project_option
@db_option
@handle_errors
def map_customer(user_id: str, customer_id: str, project_id: str, db_url: str | None) -> None:
    """Bill USER_ID's usage to the Stripe customer CUSTOMER_ID (cus_...)."""
    if not is_customer_id(customer_id):
        raise click.BadParameter(
            f"{customer_id!r} is not a Stripe customer id (cus_ and letters or digits)",
            param_hint="'CUSTOMER_ID'",
        )
    if not 0 < len(user_id) <= 256:
        raise click.BadParameter("a user id has 1 to 256 characters", param_hint="'USER_ID'")
    ledger = open_ledger(db_url)
    try:
        ledger.map_stripe_customer(project_id, user_id, customer_id)
    finally:
        ledger.close()
    click.echo(f"user {user_id} -> {customer_id} (project {project_id})")


@click.command(
    epilog="""
\b
Examples:
  agentmeter stripe unmap alice
  agentmeter stripe unmap alice --db sqlite:///ledger.db
""",
)
@click.argument("user_id")
@project_option
@db_option
@handle_errors
def unmap(user_id: str, project_id: str, db_url: str | None) -> None:
    """Forget USER_ID's Stripe customer (their events' metadata may still name one)."""
    ledger = open_ledger(db_url)
    try:
        removed = ledger.unmap_stripe_customer(project_id, user_id)
    finally:
        ledger.close()
    if not removed:
        click.echo(f"error: user {user_id} has no Stripe customer mapped", err=True)
        sys.exit(EXIT_API)
    click.echo(f"user {user_id} unmapped (project {project_id})")


@click.command(
    epilog="""
\b
Examples:
  agentmeter stripe mappings
  agentmeter stripe mappings --format json --db sqlite:///ledger.db
""",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@project_option
@db_option
@handle_errors
def mappings(fmt: str, project_id: str, db_url: str | None) -> None:
    """The users mapped to Stripe customers."""
    ledger = open_ledger(db_url)
    try:
        mapped = ledger.stripe_customers(project_id)
    finally:
        ledger.close()
    if fmt == "json":
        click.echo(dump_json({"project_id": project_id, "customers": mapped}))
        return
    table = TextTable([Column("User"), Column("Customer")], title=f"Project {project_id}")
    for user_id, customer_id in mapped.items():
        table.add_row(user_id, customer_id)
    print_table(table, None)
