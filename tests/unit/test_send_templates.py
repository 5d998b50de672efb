"""The templates of ``agentmeter send``: each makes a valid event of its payment type,
answers read back as typed, and a usage charge's amount is the exact product."""

from __future__ import annotations

from decimal import Decimal

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from agentmeter.cli.send_templates import (
    TEMPLATES,
    apply_field,
    field_value,
    placeholder,
    starting_event,
    template_named,
)
from agentmeter.errors import AgentMeterValidationError
from agentmeter.models import parse_event
from agentmeter.pricing import MONEY_CONTEXT

BASE = {"id": "ev-1", "project_id": "p", "agent_id": "a", "user_id": "u", "metadata": {}}
USAGE_UNITS = {
    "compute": "compute_hour",
    "storage": "gb_month",
    "saas": "api_call",
    "credits": "credit",
}


def answered(template_key: str, **answers: str) -> dict:
    template = template_named(template_key)
    event = starting_event(template, BASE)
    for spec in template.fields:
        event = apply_field(template, event, spec, answers.get(spec.name, placeholder(spec)))
    return event


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_every_template_makes_an_event_of_its_payment_type(template):
    model = parse_event(answered(template.key))
    assert model.payment_type == template.payment_type
    assert model.metadata.get("unit") == USAGE_UNITS.get(template.key)


@pytest.mark.parametrize("template", TEMPLATES, ids=lambda t: t.key)
def test_each_answer_reads_back_as_typed(template):
    answers = {
        spec.name: {"count": "7", "quantity": "2.5", "text": "word"}.get(spec.kind, "0.125")
        for spec in template.fields
    }
    event = answered(template.key, **answers)
    for spec in template.fields:
        assert field_value(spec, event) == answers[spec.name]


def test_templates_are_chosen_by_key_or_number():
    assert template_named("1") is TEMPLATES[0]
    assert template_named("storage").title == "Storage (GB-month)"
    with pytest.raises(KeyError, match="choose one of api, tokens"):
        template_named("8")


def test_a_count_is_mirrored_into_api_calls_and_the_quantity():
    event = parse_event(answered("compute", hours="12", unit_price="2.40"))
    assert event["api_calls"] == 12
    assert event.metadata["quantity"] == 12
    assert event.total_cost == Decimal("28.80")


def test_a_count_that_is_no_number_is_refused_by_the_event_model():
    with pytest.raises(AgentMeterValidationError) as caught:
        parse_event(answered("credits", credits="12.5"))
    assert caught.value.field == "api_calls"


def test_an_optional_answer_left_empty_leaves_the_key_out():
    event = answered("compute", resource="gpu")
    assert event["metadata"]["resource"] == "gpu"
    spec = template_named("compute").field("resource")
    cleared = apply_field(template_named("compute"), event, spec, "  ")
    assert "resource" not in cleared["metadata"]


@settings(max_examples=200, deadline=None)
@given(
    quantity=st.decimals(min_value=0, max_value=10**6, places=6, allow_nan=False),
    price=st.decimals(min_value=0, max_value=10**3, places=8, allow_nan=False),
)
def test_storage_charges_the_exact_product(quantity, price):
    event = parse_event(answered("storage", gb_months=str(quantity), unit_price=str(price)))
    assert event.total_cost == MONEY_CONTEXT.multiply(quantity, price)
    assert Decimal(event.metadata["quantity"]) == quantity
    assert Decimal(event.metadata["unit_price"]) == price


def test_a_negative_quantity_is_refused_naming_the_field():
    with pytest.raises(AgentMeterValidationError) as caught:
        answered("storage", gb_months="-3")
    assert caught.value.field == "gb_months"
