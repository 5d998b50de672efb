"""``agentmeter stripe``: send usage to Stripe as Billing Meter Events (docs/stripe.md).

Works on the ledger database itself (``--db``, default the embedded ledger
file), as ``agentmeter ledger`` does: the customer map and the sync log are
ledger tables. ``sync`` is a dry run unless ``--commit``: it prints the
meter events it would send, sends nothing and writes nothing. Exit 1 when
an event Stripe should have taken failed; skipped rows (unmapped users,
periods not over, periods Stripe no longer takes) are listed, exit 0.
"""

from __future__ import annotations

import os
import sys
from datetime import datetime, timezone
from typing import Any

import click

from ..core.jsonio import format_time
from ..core.wire import ReportQuery
from ..ledger import Ledger
from ..ledger.base import to_micros
from .common import EXIT_API, handle_errors
from .output import Column, TextTable, count_text, dump_json, print_table, progress_bar
from .params import MOMENT, TIME_HELP, check_range, end_or_now
from .stripe_customers import db_option, map_customer, mappings, open_ledger, project_option, unmap
from .stripe_send import KEY_ENV, MeterEventSender, api_base, key_livemode, send_plan
from .stripe_usage import (
    FAILED,
    GRANULARITIES,
    SEND,
    SENT,
    UNMAPPED,
    VALUE_KINDS,
    SyncPlan,
    SyncSettings,
    is_customer_id,
    plan_sync,
    whole_periods,
)


@click.group(
    epilog="""
\b
Examples:
  agentmeter stripe map alice cus_NciAYcXfLnqBoz
  agentmeter stripe sync --since 2025-01-01 --until 2025-02-01
  STRIPE_API_KEY=sk_live_... agentmeter stripe sync --since 2025-01-01 --commit
"""
)
def stripe() -> None:
    """Send usage to Stripe as Billing Meter Events (works on the ledger database)."""


SYNC_EXAMPLES = f"""
\b
Examples:
  agentmeter stripe sync --since 2025-01-01 --until 2025-02-01
  agentmeter stripe sync --since 7d --value tokens --event-name ai_tokens --format json
  STRIPE_API_KEY=sk_live_... agentmeter stripe sync --since 2025-01-01 --commit
  agentmeter stripe sync --db postgresql+psycopg://u:p@db/am --since 3d --granularity hour

\b
Dry run unless --commit. Only whole, finished periods (UTC) inside
[--since, --until) are sent, each user's period as one meter event whose
identifier never changes, so a re-run sends nothing twice; --force resends
logged ones with the same identifier. The key comes from {KEY_ENV}.
"""


@stripe.command(epilog=SYNC_EXAMPLES)
@click.option("--since", type=MOMENT, required=True, help=f"Start, inclusive: {TIME_HELP}.")
@click.option("--until", type=MOMENT, help="End, exclusive (default now; same forms).")
@click.option("--commit", is_flag=True, help="Send to Stripe and log it (else a dry run).")
@click.option("--force", is_flag=True, help="Resend periods the sync log has (same identifiers).")
@click.option(
    "--value",
    "value_kind",
    type=click.Choice(VALUE_KINDS),
    default="cost",
    show_default=True,
    help="cost: in cents, rounded half-even once; tokens: in + out; api_calls.",
)
@click.option(
    "--event-name",
    metavar="NAME",
    help="The Stripe meter's event name (default agentmeter_ and the value kind).",
)
@click.option(
    "--granularity",
    type=click.Choice(GRANULARITIES),
    default="day",
    show_default=True,
    help="One meter event per user and UTC hour, day or month.",
)
@click.option(
    "--retries",
    type=click.IntRange(0, 10),
    default=3,
    show_default=True,
    help="Retries of a failed call (the stripe package's own, same idempotency key).",
)
@click.option("--format", "fmt", type=click.Choice(["table", "json"]), default="table")
@project_option
@db_option
@handle_errors
def sync(
    since: datetime,
    until: datetime | None,
    commit: bool,
    force: bool,
    value_kind: str,
    event_name: str | None,
    granularity: str,
    retries: int,
    fmt: str,
    project_id: str,
    db_url: str | None,
) -> None:
    """Send each user's usage per period to Stripe as Billing Meter Events."""
    check_range(since, until)
    start, end = whole_periods(since, end_or_now(until), granularity)
    if start >= end:
        raise click.UsageError(f"no whole {granularity} (UTC) between --since and --until")
    event_name = event_name or f"agentmeter_{value_kind}"
    api_key = os.environ.get(KEY_ENV) or None
    if commit and api_key is None:
        raise click.UsageError(f"--commit needs the Stripe key in {KEY_ENV}")
    sender = None
    if commit and api_key is not None:
        sender = MeterEventSender(api_key, retries=retries, base_url=api_base())
    settings = SyncSettings(
        project_id=project_id,
        event_name=_checked_event_name(event_name),
        value_kind=value_kind,
        granularity=granularity,
        livemode=key_livemode(api_key) if api_key else True,
        force=force,
    )
    query = _report_query(settings, start, end)
    ledger = open_ledger(db_url)
    try:
        plan = _plan(ledger, SyncPlan(settings, start, end), query)
        if sender is not None:
            with progress_bar() as progress:
                total = sum(1 for event in plan.events if event.status == SEND)
                task = progress.add_task("sending meter events", total=total)
                send_plan(plan, ledger, sender, lambda: progress.advance(task))
    finally:
        ledger.close()
    if fmt == "json":
        click.echo(dump_json(_plan_document(plan, commit)))
    else:
        _print_plan(plan, commit)
    if any(event.status == FAILED for event in plan.events):
        sys.exit(EXIT_API)


def _checked_event_name(event_name: str) -> str:
    if not 0 < len(event_name) <= 100 or event_name != event_name.strip():
        raise click.BadParameter(
            "a Stripe event name has 1 to 100 characters, no outer spaces",
            param_hint="'--event-name'",
        )
    return event_name


def _report_query(settings: SyncSettings, start: datetime, end: datetime) -> ReportQuery:
    try:
        return ReportQuery(
            project_id=settings.project_id,
            granularity=settings.granularity,
            group_by=["user"],
            start_date=start,
            end_date=end,
        )
    except ValueError:
        raise click.BadParameter("not a project id", param_hint="'--project-id'") from None


def _plan(ledger: Ledger, plan: SyncPlan, query: ReportQuery) -> SyncPlan:
    """Each user's usage per period, their customers and the log, judged row by row."""
    settings = plan.settings
    rows = ledger.report(query)
    customers = ledger.stripe_customers(settings.project_id)
    users = sorted({row.user_id or "" for row in rows} - set(customers))
    notes: dict[str, str] = {}
    for user_id, value in ledger.stripe_customers_from_metadata(settings.project_id, users).items():
        if is_customer_id(value):
            customers[user_id] = value
        else:
            notes[user_id] = f"metadata stripe_customer_id {value!r} is not a customer id"
    log = ledger.stripe_sync_log(
        settings.project_id,
        settings.event_name,
        settings.livemode,
        to_micros(plan.start),
        to_micros(plan.end),
    )
    return plan_sync(plan, rows, customers, log, datetime.now(timezone.utc), notes)


# ------------------------------------------------------------ rendering


def _plan_document(plan: SyncPlan, commit: bool) -> dict[str, Any]:
    settings = plan.settings
    rows = []
    for event in plan.events:
        row: dict[str, Any] = {
            "user_id": event.user_id,
            "period": event.period.label,
            "period_start": format_time(event.period.start),
            "period_end": format_time(event.period.end),
            "customer_id": event.customer_id,
            "value": event.value,
            "identifier": event.identifier,
            "status": event.status,
            "note": event.note,
        }
        if event.status in (SEND, SENT, FAILED):
            row["request"] = event.request(settings.event_name)
        if event.stripe_request_id:
            row["stripe_request_id"] = event.stripe_request_id
        rows.append(row)
    return {
        "dry_run": not commit,
        "project_id": settings.project_id,
        "event_name": settings.event_name,
        "value": settings.value_kind,
        "granularity": settings.granularity,
        "livemode": settings.livemode,
        "start": format_time(plan.start),
        "end": format_time(plan.end),
        "rows": rows,
        "counts": plan.counts(),
    }


def _print_plan(plan: SyncPlan, commit: bool) -> None:
    settings = plan.settings
    unit = " (cents)" if settings.value_kind == "cost" else ""
    title = (
        f"Stripe meter events {settings.event_name!r}, {settings.value_kind} per user and "
        f"{settings.granularity}, project {settings.project_id}, "
        f"{format_time(plan.start)} to {format_time(plan.end)}"
    )
    columns = [Column("User"), Column("Period"), Column("Customer")]
    columns += [Column(f"Value{unit}", numeric=True), Column("Identifier"), Column("Status")]
    table = TextTable(columns, title=title)
    for event in plan.events:
        status = f"{event.status}: {event.note}" if event.note else event.status
        customer = event.customer_id or "-"
        table.add_row(
            event.user_id,
            event.period.label,
            customer,
            count_text(event.value),
            event.identifier,
            status,
        )
    print_table(table, None, footer=_footer(plan, commit))


def _footer(plan: SyncPlan, commit: bool) -> list[str]:
    counts = plan.counts()
    lines = [", ".join(f"{count_text(n)} {status}" for status, n in counts.items()) or "no usage"]
    unmapped = sorted({e.user_id for e in plan.events if e.status == UNMAPPED})
    if unmapped:
        lines.append(
            f"no Stripe customer for {', '.join(unmapped)}: "
            "agentmeter stripe map USER_ID cus_... (or a stripe_customer_id metadata key)"
        )
    mode = "live" if plan.settings.livemode else "test"
    if not commit:
        lines.append(f"dry run ({mode} mode's sync log): nothing sent; --commit sends")
    else:
        lines.append(f"{count_text(counts.get(SENT, 0))} sent to Stripe ({mode} mode)")
    return lines


for command in (map_customer, unmap, mappings):
    stripe.add_command(command)
