"""A project's own model prices and markup (issue 13), stored by the ledger, on
every backend: HTTP on SQLite, embedded, HTTP on PostgreSQL."""

from __future__ import annotations

from decimal import Decimal

import pytest

from agentmeter.errors import (
    AgentMeterValidationError,
    NotFoundError,
    PermissionDeniedError,
)


def test_a_project_sets_lists_and_deletes_its_own_prices(client):
    assert client.get_prices().prices == []
    for model in ("openai/gpt-4o", "anthropic.claude-3-5-sonnet-20240620-v1:0", "house model"):
        client.set_price(model, input="2.5", output="10", cached_input="1.25")
    client.set_price("house model", input=3, output="12.000")  # replaced, not added
    table = client.get_prices()
    assert [row.model for row in table.prices] == [
        "anthropic.claude-3-5-sonnet-20240620-v1:0",
        "house model",
        "openai/gpt-4o",
    ]
    house = table.prices[1]
    assert (house.input, house.output, house.cached_input) == (Decimal(3), Decimal(12), None)
    assert client.delete_price("openai/gpt-4o") == {"deleted": True}
    with pytest.raises(NotFoundError):
        client.delete_price("openai/gpt-4o")
    assert len(client.get_prices().prices) == 2


def test_the_markup_is_kept_with_the_table(client):
    assert client.get_prices().markup_percent == 0
    assert client.set_markup("12.5").markup_percent == Decimal("12.5")
    assert client.get_prices().markup_percent == Decimal("12.5")


@pytest.mark.parametrize(
    ("call", "field"),
    [
        (lambda c: c.set_price("m", input="-1", output="1"), "input"),
        (lambda c: c.set_price("m", input="1", output="NaN"), "output"),
        (lambda c: c.set_price("", input="1", output="1"), "model"),
        (lambda c: c.set_price("x" * 201, input="1", output="1"), "model"),
        (lambda c: c.set_markup("-5"), "markup_percent"),
        (lambda c: c.set_markup("10001"), "markup_percent"),
        # Exactness: a marked-up or per-token price must fit 18 decimal places.
        (lambda c: c.set_markup("1.00001"), "markup_percent"),
        (lambda c: c.set_price("m", input="0.0000000000001", output="1"), "input"),
        (
            lambda c: c.set_price("m", input="1", output="1", cache_write="1.0000000000001"),
            "cache_write",
        ),
    ],
)
def test_bad_prices_are_refused_naming_the_field(client, call, field):
    with pytest.raises(AgentMeterValidationError, match=field):
        call(client)
    assert client.get_prices().prices == []


def test_a_key_cannot_price_another_project(http_backend, unique):
    mine, theirs = http_backend.new_project(), http_backend.new_project()
    with http_backend.connect(mine) as client:
        with pytest.raises(PermissionDeniedError):
            client.set_price("gpt-4o", input="1", output="1", project_id=theirs.id)
        with pytest.raises(PermissionDeniedError):
            client.get_prices(project_id=theirs.id)
    assert http_backend.admin.get_prices(project_id=theirs.id).prices == []


def test_the_admin_cannot_price_a_missing_project(http_backend):
    with pytest.raises(NotFoundError):
        http_backend.admin.set_price("gpt-4o", input="1", output="1", project_id="proj_missing")
