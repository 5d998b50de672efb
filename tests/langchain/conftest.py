"""The LangChain suite's parts: one real server, fresh projects, and fake models.

- ``live_server``: ONE ``agentmeter serve`` on a temp SQLite file for the session.
- ``project`` / ``client``: a fresh project per test and a client of it (its key,
  over HTTP), so tests never see each other's events.
- ``lc``: the fake models and helpers below, for test modules (several
  conftest.py files live under tests/, so importing this one by name would be
  ambiguous).

The fake models are real ``BaseChatModel`` / ``BaseLLM`` subclasses, driven by
real langchain-core: every callback the handler sees is the one LangChain makes.
``TokenChat`` reads the usage it reports off the prompt (``"in=12 out=7"``), so
a test knows the exact tokens (and so the exact cost) of every call it makes.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from decimal import Decimal
from types import SimpleNamespace
from typing import Any

import pytest
from langchain_core.callbacks import BaseCallbackHandler
from langchain_core.language_models import BaseChatModel, BaseLLM
from langchain_core.messages import AIMessage, AIMessageChunk, BaseMessage
from langchain_core.outputs import (
    ChatGeneration,
    ChatGenerationChunk,
    ChatResult,
    Generation,
    LLMResult,
)

import agentmeter.delivery.outbox
from agentmeter import AgentMeterClient
from agentmeter.models import MeterEvent
from agentmeter.testing import LiveServer

# ------------------------------------------------------------------ server


@pytest.fixture(scope="session", autouse=True)
def _outbox_in_temp(tmp_path_factory: pytest.TempPathFactory) -> Iterator[None]:
    """Default trackers spool to a temp dir, never to the developer's ~/.agentmeter."""
    with pytest.MonkeyPatch.context() as patch:
        patch.setattr(
            agentmeter.delivery.outbox,
            "DEFAULT_OUTBOX",
            tmp_path_factory.mktemp("outbox") / "outbox.db",
        )
        yield


@pytest.fixture(autouse=True)
def _stream_warning_again() -> None:
    """The streaming warning is once per process; each test may expect it anew."""
    from agentmeter.integrations import langchain

    langchain._stream_warning.clear()


@pytest.fixture(scope="session")
def live_server(tmp_path_factory: pytest.TempPathFactory) -> Iterator[LiveServer]:
    """The one ``agentmeter serve`` the LangChain tests share (each in its own project)."""
    path = tmp_path_factory.mktemp("langchain-live") / "ledger.db"
    with LiveServer(f"sqlite:///{path}") as server:
        yield server


@pytest.fixture(scope="session")
def admin(live_server: LiveServer) -> Iterator[AgentMeterClient]:
    with live_server.client(retry_attempts=0, timeout=60) as client:
        yield client


@pytest.fixture
def project(admin: AgentMeterClient) -> SimpleNamespace:
    made = admin.create_project(f"langchain {uuid.uuid4().hex[:8]}")
    assert made.api_key is not None
    return SimpleNamespace(id=made.id, key=made.api_key.get_secret_value())


@pytest.fixture
def client(live_server: LiveServer, project: SimpleNamespace) -> Iterator[AgentMeterClient]:
    """A client of this test's project; the handler sends through its default tracker."""
    with live_server.client(
        project.key, project_id=project.id, agent_id="lc-agent", retry_attempts=2, timeout=30
    ) as made:
        yield made
        made.close(timeout=5)


# ------------------------------------------------------------ fake models

_USAGE_IN_PROMPT = re.compile(r"in=(\d+)\s+out=(\d+)")
DEFAULT_USAGE = (10, 5)


def prompt_usage(text: str) -> tuple[int, int]:
    """The usage a fake model reports for a prompt: ``"in=12 out=7"``, else (10, 5)."""
    found = _USAGE_IN_PROMPT.search(text)
    return (int(found.group(1)), int(found.group(2))) if found else DEFAULT_USAGE


def usage_metadata(tokens_in: int, tokens_out: int, **extra: Any) -> dict[str, Any]:
    return {
        "input_tokens": tokens_in,
        "output_tokens": tokens_out,
        "total_tokens": tokens_in + tokens_out,
        **extra,
    }


def _last_text(messages: list[BaseMessage]) -> str:
    return str(messages[-1].content) if messages else ""


class TokenChat(BaseChatModel):
    """A chat model that reports the usage written in its prompt.

    ``shape`` says where the usage goes, as real providers put it:
    ``"usage_metadata"`` (on the message, as every modern chat model),
    ``"llm_output"`` (``llm_output["token_usage"]`` only, as legacy models),
    ``"openai"`` (the same numbers in three places, as ChatOpenAI) or
    ``"none"``. ``n`` answers per prompt each repeat the full usage (as
    providers do). ``fail`` raises instead of answering; ``fail_mid_stream``
    raises after the first streamed chunk (which carries usage). ``_stream``
    splits the answer into words and puts the usage on the LAST chunk (as
    OpenAI does with ``stream_options.include_usage``), unless
    ``split_stream_usage`` spreads it over the first and last chunks.
    """

    model_name: str = "fake-chat"
    response_model: str | None = None  # response_metadata["model_name"]
    shape: str = "usage_metadata"
    answer: str = "one two three"
    n: int = 1
    fail: bool = False
    fail_mid_stream: bool = False
    split_stream_usage: bool = False
    stream_usage: bool = True
    delay: float = 0.0

    @property
    def _llm_type(self) -> str:
        return "token-chat"

    def _message(self, text: str) -> tuple[AIMessage, dict[str, Any]]:
        tokens_in, tokens_out = prompt_usage(text)
        token_usage = {
            "prompt_tokens": tokens_in,
            "completion_tokens": tokens_out,
            "total_tokens": tokens_in + tokens_out,
        }
        response_metadata: dict[str, Any] = {}
        if self.response_model:
            response_metadata["model_name"] = self.response_model
        if self.shape == "openai":
            response_metadata["token_usage"] = token_usage
        usage = (
            usage_metadata(tokens_in, tokens_out)
            if self.shape in ("usage_metadata", "openai")
            else None
        )
        message = AIMessage(
            content=self.answer, usage_metadata=usage, response_metadata=response_metadata
        )
        llm_output: dict[str, Any] = {}
        if self.shape in ("llm_output", "openai"):
            llm_output["token_usage"] = token_usage
            if self.response_model:
                llm_output["model_name"] = self.response_model
        return message, llm_output

    def _generate(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> ChatResult:
        if self.delay:
            time.sleep(self.delay)
        if self.fail:
            raise RuntimeError("the fake model failed")
        message, llm_output = self._message(_last_text(messages))
        generations = [ChatGeneration(message=message) for _ in range(self.n)]
        return ChatResult(generations=generations, llm_output=llm_output or None)

    def _stream(
        self,
        messages: list[BaseMessage],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> Iterator[ChatGenerationChunk]:
        tokens_in, tokens_out = prompt_usage(_last_text(messages))
        words = self.answer.split(" ")
        last = len(words) - 1
        for index, word in enumerate(words):
            usage = None
            if self.stream_usage and self.split_stream_usage:
                if index == 0:
                    usage = usage_metadata(tokens_in, 1)
                elif index == last:
                    usage = usage_metadata(0, tokens_out - 1)
            elif self.stream_usage and index == last:
                usage = usage_metadata(tokens_in, tokens_out)
            if self.fail_mid_stream and index == 0:
                usage = usage_metadata(tokens_in, 1)
            metadata = {"model_name": self.response_model} if index == last else {}
            if not self.response_model:
                metadata = {}
            chunk = ChatGenerationChunk(
                message=AIMessageChunk(
                    content=word if index == last else word + " ",
                    usage_metadata=usage,  # type: ignore[arg-type]
                    response_metadata=metadata,
                )
            )
            yield chunk  # LangChain itself reports each chunk to on_llm_new_token
            if self.fail_mid_stream:
                raise RuntimeError("the fake model failed mid-stream")


class TokenLLM(BaseLLM):
    """A plain (completion) LLM that reports its usage in ``llm_output`` for
    the whole ``generate`` call, summed over its prompts, as legacy OpenAI does."""

    model_name: str = "fake-llm"
    report_usage: bool = True

    @property
    def _llm_type(self) -> str:
        return "token-llm"

    def _generate(
        self,
        prompts: list[str],
        stop: list[str] | None = None,
        run_manager: Any = None,
        **kwargs: Any,
    ) -> LLMResult:
        generations = [[Generation(text=f"echo {prompt}")] for prompt in prompts]
        if not self.report_usage:
            return LLMResult(generations=generations)
        usages = [prompt_usage(prompt) for prompt in prompts]
        token_usage = {
            "prompt_tokens": sum(u[0] for u in usages),
            "completion_tokens": sum(u[1] for u in usages),
            "total_tokens": sum(u[0] + u[1] for u in usages),
        }
        return LLMResult(
            generations=generations,
            llm_output={"token_usage": token_usage, "model_name": self.model_name},
        )


class Spy(BaseCallbackHandler):
    """Records the runs LangChain reports: ``ends[run_id] = (response, kwargs)``."""

    run_inline = True

    def __init__(self) -> None:
        self.starts: dict[Any, dict[str, Any]] = {}
        self.ends: dict[Any, tuple[LLMResult, dict[str, Any]]] = {}
        self.tools: dict[Any, dict[str, Any]] = {}
        self.chains: list[Any] = []

    def on_chat_model_start(self, serialized: Any, messages: Any, **kwargs: Any) -> None:
        self.starts[kwargs["run_id"]] = kwargs

    def on_llm_start(self, serialized: Any, prompts: Any, **kwargs: Any) -> None:
        self.starts[kwargs["run_id"]] = kwargs

    def on_llm_end(self, response: LLMResult, **kwargs: Any) -> None:
        self.ends[kwargs["run_id"]] = (response, kwargs)

    def on_tool_start(self, serialized: Any, input_str: str, **kwargs: Any) -> None:
        self.tools[kwargs["run_id"]] = kwargs

    def on_chain_start(self, serialized: Any, inputs: Any, **kwargs: Any) -> None:
        self.chains.append(kwargs["run_id"])


# ----------------------------------------------------------------- helpers


def settle(client: AgentMeterClient) -> None:
    """Everything tracked so far is on the server."""
    assert client.flush(timeout=30), client.tracker.stats()


def events(client: AgentMeterClient, **query: Any) -> list[MeterEvent]:
    """The project's stored events (after delivering what is queued), oldest first."""
    settle(client)
    found: list[MeterEvent] = []
    while True:
        page = client.get_events(limit=1000, offset=len(found), **query)
        found += page
        if len(page) < 1000:
            return list(reversed(found))


def cost(tokens: tuple[int, int], prices: tuple[str, str]) -> Decimal:
    return tokens[0] * Decimal(prices[0]) + tokens[1] * Decimal(prices[1])


@pytest.fixture
def lc() -> SimpleNamespace:
    """This file's fake models and helpers, for test modules."""
    return SimpleNamespace(
        TokenChat=TokenChat,
        TokenLLM=TokenLLM,
        Spy=Spy,
        usage_metadata=usage_metadata,
        prompt_usage=prompt_usage,
        settle=settle,
        events=events,
        cost=cost,
        DEFAULT_USAGE=DEFAULT_USAGE,
    )
