"""A one-event write fills the rollups as a batch of the same events does."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from agentmeter.ledger import Ledger
from agentmeter.ledger.rollup_schema import ROLLUPS, rollup_metadata
from agentmeter.ledger.schema import events as events_table
from agentmeter.models import TokenBasedPayEvent

from .test_rollups import BASE, event_strategy, make


def _rollup_rows(ledger: Ledger) -> list[Any]:
    with ledger.reading() as connection:
        return [sorted(connection.execute(rollup.table.select()).all()) for rollup in ROLLUPS]


def _token_event(number: int, model: str | None) -> TokenBasedPayEvent:
    return TokenBasedPayEvent(
        id=f"t{number}", project_id="p", user_id="u", agent_id="a", timestamp=BASE,
        tokens_in=number, tokens_out=2 * number, input_token_price="0.000001",
        output_token_price="0.000003", model=model,
    )  # fmt: skip


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(specs=st.lists(event_strategy, max_size=20))
def test_one_event_at_a_time_or_all_at_once_the_rollups_agree(
    tmp_path: Path, specs: list[Any]
) -> None:
    ledgers = []
    for name in ("one", "all"):
        ledger = Ledger.open(f"sqlite:///{tmp_path / name}.db")
        with ledger.writing() as connection:
            for table in (events_table, *rollup_metadata.sorted_tables):
                connection.execute(table.delete())
        for project in ("p", "q"):
            ledger.ensure_project(project, project)
        ledgers.append(ledger)
    batch = [make(spec) for spec in specs]
    batch += [_token_event(n, model) for n, model in enumerate([None, "m", "m"])]
    one, together = ledgers
    for event in batch:
        one.record_events([event])
    together.record_events(batch)
    assert _rollup_rows(one) == _rollup_rows(together)
    for ledger in ledgers:
        ledger.close()
