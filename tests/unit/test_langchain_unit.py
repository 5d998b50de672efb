"""read_usage and the model price table, without a server."""

from __future__ import annotations

from decimal import Decimal

import pytest

pytest.importorskip("langchain_core")

from langchain_core.messages import AIMessage
from langchain_core.outputs import ChatGeneration, Generation, LLMResult

from agentmeter import AgentMeterClient, AgentMeterValidationError
from agentmeter.integrations.langchain import (
    LangChainAgentMeterCallback,
    read_usage,
)
from agentmeter.pricing import (
    model_price_table,
    price_for_model,
)


def usage(tokens_in, tokens_out, **extra):
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        **extra,
    }


def chat_result(*messages, llm_output=None):
    return LLMResult(
        generations=[[ChatGeneration(message=m) for m in messages]], llm_output=llm_output
    )


# ---------------------------------------------------------------- read_usage


def test_usage_metadata_is_read():
    found = read_usage(chat_result(AIMessage("x", usage_metadata=usage(12, 5))))
    assert (found.tokens_in, found.tokens_out, found.model, found.cache_hit) == (12, 5, None, False)


def test_usage_metadata_wins_and_nothing_is_added_up():
    """ChatOpenAI: the same usage on the message, in response_metadata and llm_output."""
    message = AIMessage(
        "x",
        usage_metadata=usage(12, 5),
        response_metadata={
            "model_name": "gpt-4o-mini-2024-07-18",
            "token_usage": {"prompt_tokens": 12, "completion_tokens": 5},
        },
    )
    llm_output = {"token_usage": {"prompt_tokens": 12, "completion_tokens": 5}, "model_name": "x"}
    found = read_usage(chat_result(message, llm_output=llm_output))
    assert (found.tokens_in, found.tokens_out) == (12, 5)
    assert found.model == "gpt-4o-mini-2024-07-18"


def test_only_the_first_generation_is_read():
    """n > 1: every generation repeats the call's full usage."""
    result = chat_result(
        AIMessage("a", usage_metadata=usage(9, 4)),
        AIMessage("b", usage_metadata=usage(9, 4)),
        AIMessage("c", usage_metadata=usage(9, 4)),
    )
    found = read_usage(result)
    assert (found.tokens_in, found.tokens_out) == (9, 4)


def test_cache_tokens_are_split_out_of_langchains_input_tokens_never_added():
    """LangChain counts cache reads and writes inside input_tokens; on the wire
    cache reads stay inside tokens_in and cache writes come on top of it."""
    details = {"cache_read": 700, "cache_creation": 100}
    found = read_usage(
        chat_result(AIMessage("x", usage_metadata=usage(1000, 3, input_token_details=details)))
    )
    classes = (found.tokens_in, found.tokens_out, found.cached_tokens_in, found.cache_write_tokens)
    assert classes == (900, 3, 700, 100)  # 900 + 100 = the 1000 input tokens, once each


@pytest.mark.parametrize(
    ("token_usage", "expected"),
    [
        ({"prompt_tokens": 30, "completion_tokens": 7, "total_tokens": 37}, (30, 7)),
        ({"input_tokens": 30, "output_tokens": 7}, (30, 7)),  # Anthropic's names
        ({"prompt_tokens": 30}, (30, 0)),
    ],
)
def test_legacy_llm_output_token_usage(token_usage, expected):
    result = LLMResult(
        generations=[[Generation(text="x")]],
        llm_output={"token_usage": token_usage, "model_name": "text-davinci"},
    )
    found = read_usage(result)
    assert (found.tokens_in, found.tokens_out) == expected
    assert found.model == "text-davinci"


def test_llm_output_usage_key_is_read_too():
    result = LLMResult(
        generations=[[Generation(text="x")]],
        llm_output={"usage": {"input_tokens": 3, "output_tokens": 2}},
    )
    found = read_usage(result)
    assert (found.tokens_in, found.tokens_out) == (3, 2)


@pytest.mark.parametrize(
    "result",
    [
        LLMResult(generations=[]),
        LLMResult(generations=[[]]),
        LLMResult(generations=[[Generation(text="x")]]),
        LLMResult(generations=[[Generation(text="x")]], llm_output={}),
        # LLMResult.flatten() empties token_usage on every run but the batch's first.
        LLMResult(generations=[[Generation(text="x")]], llm_output={"token_usage": {}}),
        chat_result(AIMessage("x")),
    ],
)
def test_no_usage_is_none(result):
    assert read_usage(result) is None


def test_a_cache_hit_is_flagged_by_total_cost_zero():
    hit = read_usage(chat_result(AIMessage("x", usage_metadata=usage(5, 5, total_cost=0))))
    assert hit.cache_hit
    assert (hit.tokens_in, hit.tokens_out) == (5, 5)
    paid = read_usage(chat_result(AIMessage("x", usage_metadata=usage(5, 5, total_cost=0.01))))
    assert not paid.cache_hit


def test_the_model_name_comes_from_response_metadata_then_llm_output():
    message = AIMessage("x", usage_metadata=usage(1, 1))
    found = read_usage(chat_result(message, llm_output={"model_name": "from-llm-output"}))
    assert found.model == "from-llm-output"


# ------------------------------------------------------------------- prices
# The handler's prices= table: a user's own per-model prices (the list prices
# are the catalog's, tests/unit/test_catalog.py). Matching is by exact name or
# the longest prefix.
USER_TABLE: dict[str, tuple[str, str]] = {
    "gpt-4o": ("0.0000025", "0.00001"),
    "gpt-4o-mini": ("0.00000015", "0.0000006"),
    "gpt-4.1": ("0.000002", "0.000008"),
    "gpt-4.1-mini": ("0.0000004", "0.0000016"),
    "gpt-4.1-nano": ("0.0000001", "0.0000004"),
    "o3-mini": ("0.0000011", "0.0000044"),
    "claude-3-5-haiku": ("0.0000008", "0.000004"),
    "claude-3-5-sonnet": ("0.000003", "0.000015"),
    "claude-sonnet-4": ("0.000003", "0.000015"),
    "claude-opus-4": ("0.000015", "0.000075"),
    "gemini-1.5-flash": ("0.000000075", "0.0000003"),
    "gemini-1.5-pro": ("0.00000125", "0.000005"),
}


def test_there_is_no_built_in_table_any_more():
    assert model_price_table() == {}


def test_a_users_table_is_valid_money():
    table = model_price_table(USER_TABLE)
    assert set(table) == set(USER_TABLE)
    for name, (price_in, price_out) in table.items():
        assert isinstance(price_in, Decimal), name
        assert isinstance(price_out, Decimal), name
        assert min(price_in, price_out) > 0, name
        assert (price_in, price_out) == tuple(map(Decimal, USER_TABLE[name]))


@pytest.mark.parametrize(
    ("model", "entry"),
    [
        ("gpt-4o", "gpt-4o"),
        ("gpt-4o-2024-08-06", "gpt-4o"),
        ("gpt-4o-mini", "gpt-4o-mini"),
        ("gpt-4o-mini-2024-07-18", "gpt-4o-mini"),
        ("gpt-4.1-mini-2025-04-14", "gpt-4.1-mini"),
        ("gpt-4.1-nano-2025-04-14", "gpt-4.1-nano"),
        ("gpt-4.1-2025-04-14", "gpt-4.1"),
        ("claude-3-5-sonnet-20241022", "claude-3-5-sonnet"),
        ("claude-sonnet-4-20250514", "claude-sonnet-4"),
        ("gemini-1.5-flash-002", "gemini-1.5-flash"),
    ],
)
def test_a_name_matches_exactly_or_by_its_longest_prefix(model, entry):
    table = model_price_table(USER_TABLE)
    assert price_for_model(model, table) == table[entry]


@pytest.mark.parametrize("model", ["unknown", "gpt-4", "llama-3-70b", ""])
def test_a_name_without_an_entry_has_no_price(model):
    assert price_for_model(model, model_price_table(USER_TABLE)) is None


@pytest.mark.parametrize(
    ("model", "entry"),
    [("GPT-4O", "gpt-4o"), ("models/gemini-1.5-pro-002", "gemini-1.5-pro")],
)
def test_case_and_a_provider_path_do_not_hide_an_entry(model, entry):
    table = model_price_table(USER_TABLE)
    assert price_for_model(model, table) == table[entry]


def test_overrides_replace_and_extend_the_defaults_without_changing_them():
    before = dict(USER_TABLE)
    table = model_price_table(
        {
            **USER_TABLE,
            "gpt-4o": ("0.1", 0.2),
            "house": {"input_token_price": Decimal("1"), "output_token_price": "2"},
            "listed": [1, 2],
        }
    )
    assert table["gpt-4o"] == (Decimal("0.1"), Decimal("0.2"))
    assert table["house"] == (Decimal(1), Decimal(2))
    assert table["listed"] == (Decimal(1), Decimal(2))
    assert table["gpt-4o-mini"] == (Decimal("0.00000015"), Decimal("0.0000006"))
    assert price_for_model("gpt-4o-2024-11-20", table) == (Decimal("0.1"), Decimal("0.2"))
    assert dict(USER_TABLE) == before


@pytest.mark.parametrize(
    ("entry", "field"),
    [
        ("0.1", "prices['m']"),
        (("0.1",), "prices['m']"),
        (("0.1", "0.2", "0.3"), "prices['m']"),
        (("-0.1", "0.2"), "prices['m'].input_token_price"),
        (("0.1", "nan"), "prices['m'].output_token_price"),
        ({"input_token_price": "0.1"}, "prices['m'].output_token_price"),
    ],
)
def test_a_bad_override_is_refused_naming_it(entry, field):
    with pytest.raises(AgentMeterValidationError) as raised:
        model_price_table({"m": entry})
    assert field in str(raised.value)


# ------------------------------------------------------- handler settings


@pytest.fixture
def offline_client(tmp_path):
    """An embedded client: nothing here tracks an event, so nothing is written."""
    with AgentMeterClient(base_url=f"sqlite:///{tmp_path / 'ledger.db'}", project_id="p") as made:
        yield made


def test_flat_prices_win_over_the_table(offline_client):
    handler = LangChainAgentMeterCallback(
        offline_client, input_token_price="0.5", output_token_price=1
    )
    assert handler._prices_for("gpt-4o") == (Decimal("0.5"), Decimal(1))
    one = LangChainAgentMeterCallback(offline_client, output_token_price="0.2")
    assert one._prices_for("gpt-4o") == (None, Decimal("0.2"))  # None: the client's


def test_the_users_table_else_the_tracker_prices_it(offline_client):
    """A model outside ``prices=`` is left to the tracker: the catalog, else the
    client's configured defaults, else unpriced (issue 13: the table went away)."""
    handler = LangChainAgentMeterCallback(offline_client, prices={"mine": ("1", "2")})
    assert handler._prices_for("mine-v2") == (Decimal(1), Decimal(2))
    assert handler._prices_for("gpt-4o-mini-2024-07-18") == (None, None)
    assert handler._prices_for("unknown") == (None, None)


def test_bad_handler_settings_are_refused_at_once(offline_client):
    with pytest.raises(AgentMeterValidationError, match="input_token_price"):
        LangChainAgentMeterCallback(offline_client, input_token_price="-1")
    with pytest.raises(AgentMeterValidationError, match="prices"):
        LangChainAgentMeterCallback(offline_client, prices={"m": "free"})
    with pytest.raises(TypeError):
        LangChainAgentMeterCallback(object())
