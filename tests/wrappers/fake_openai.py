"""OpenAI's API, faked for the real ``openai`` SDK.

:class:`OpenAIFake` is a handler for ``fake_server`` (conftest.py). It answers
by the path's end, so OpenAI's ``/v1/...`` and Azure's
``/openai/deployments/<name>/...`` paths both work:

- ``.../chat/completions``: a ``chat.completion``, or for ``"stream": true``
  one ``chat.completion.chunk`` per piece of text, a last one with the
  ``finish_reason``, then (only if ``stream_options.include_usage``) a chunk
  with no choices and the usage, then ``[DONE]``.
- ``.../responses``: a ``response``, or for ``"stream": true`` the Responses
  events in the API's order, usage only in the final ``response.completed``.
- ``.../embeddings``: one vector per input (base64 when the SDK asks for it),
  usage with ``prompt_tokens`` only.

Counts follow OpenAI's convention: ``prompt_tokens`` / ``input_tokens``
include the cached tokens and the cache writes; ``completion_tokens`` /
``output_tokens`` include the reasoning tokens. ``counts`` may compute them
from the request (the concurrency tests read them from the message text).
Each answer has a new id; replies put in ``first`` are given before the
normal ones, one per request (a 500 for the SDK to retry, a 400 to raise).
"""

from __future__ import annotations

import base64
import struct
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any

from .conftest import Reply

MODEL = "gpt-4o-2024-08-06"
CREATED = 1_700_000_000


@dataclass(frozen=True)
class Counts:
    """One call's usage, OpenAI's way (cached and written inside ``prompt``)."""

    prompt: int = 25
    completion: int = 12
    cached: int = 0
    written: int = 0
    reasoning: int = 0


def error_reply(status: int, message: str, kind: str = "invalid_request_error", **headers: str):
    """An API error as OpenAI sends it."""
    body = {"error": {"message": message, "type": kind, "param": None, "code": None}}
    return Reply(status, body, headers=headers)


@dataclass
class OpenAIFake:
    """Chat Completions, Responses and Embeddings with these counts."""

    prompt_tokens: int = 25
    completion_tokens: int = 12
    cached_tokens: int = 0
    cache_write_tokens: int = 0
    reasoning_tokens: int = 0
    model: str | None = MODEL  # None: the requested one; "": none named
    text: tuple[str, ...] = ("Hello", ", ", "world")
    counts: Callable[[Any], Counts] | None = None  # from the request body, if set
    first: list[Reply] = field(default_factory=list)
    served: list[str] = field(default_factory=list)  # the ids answered, in order

    def __call__(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        route = path.split("?")[0]
        if self.first:
            return self.first.pop(0)
        counts = self.counts(body) if self.counts else self.fixed_counts()
        model = body["model"] if self.model is None else self.model
        if method == "POST" and route.endswith("/chat/completions"):
            return self.chat(body, model, counts)
        if method == "POST" and route.endswith("/responses"):
            return self.response(body, model, counts)
        if method == "POST" and route.endswith("/embeddings"):
            return self.embeddings(body, model, counts)
        return error_reply(404, f"no route {method} {path}", "not_found")

    def fixed_counts(self) -> Counts:
        return Counts(
            self.prompt_tokens,
            self.completion_tokens,
            self.cached_tokens,
            self.cache_write_tokens,
            self.reasoning_tokens,
        )

    def new_id(self, prefix: str) -> str:
        answer_id = f"{prefix}_{len(self.served) + 1:04d}"
        self.served.append(answer_id)
        return answer_id

    # -- Chat Completions ------------------------------------------------------

    def chat(self, body: Any, model: str, counts: Counts) -> Reply:
        answer_id = self.new_id("chatcmpl")
        usage = {
            "prompt_tokens": counts.prompt,
            "completion_tokens": counts.completion,
            "total_tokens": counts.prompt + counts.completion,
            "prompt_tokens_details": {
                "cached_tokens": counts.cached,
                "cache_write_tokens": counts.written,
                "audio_tokens": 0,
            },
            "completion_tokens_details": {"reasoning_tokens": counts.reasoning, "audio_tokens": 0},
        }
        head = {"id": answer_id, "created": CREATED, "model": model, "system_fingerprint": "fp"}
        if not body.get("stream"):
            message = {"role": "assistant", "content": "".join(self.text), "refusal": None}
            choice = {"index": 0, "message": message, "finish_reason": "stop", "logprobs": None}
            answer = {**head, "object": "chat.completion", "choices": [choice], "usage": usage}
            return Reply(body=answer)
        with_usage = bool((body.get("stream_options") or {}).get("include_usage"))
        chunk = {**head, "object": "chat.completion.chunk"}
        if with_usage:
            chunk["usage"] = None  # as OpenAI sends it on every chunk but the last

        def choice(delta: dict[str, Any], finish: str | None = None) -> dict[str, Any]:
            return {"index": 0, "delta": delta, "finish_reason": finish, "logprobs": None}

        deltas = [{"role": "assistant", "content": self.text[0]}]
        deltas += [{"content": piece} for piece in self.text[1:]]
        events: list[tuple[str | None, Any]] = [
            (None, {**chunk, "choices": [choice(delta)]}) for delta in deltas
        ]
        events.append((None, {**chunk, "choices": [choice({}, "stop")]}))
        if with_usage:
            events.append((None, {**chunk, "choices": [], "usage": usage}))
        events.append((None, "[DONE]"))
        return Reply(events=events)

    # -- Responses -------------------------------------------------------------

    def response(self, body: Any, model: str, counts: Counts) -> Reply:
        answer_id = self.new_id("resp")
        text = "".join(self.text)
        part = {"type": "output_text", "text": text, "annotations": [], "logprobs": []}
        item = {
            "type": "message",
            "id": f"msg_{answer_id}",
            "status": "completed",
            "role": "assistant",
            "content": [part],
        }
        usage = {
            "input_tokens": counts.prompt,
            "input_tokens_details": {
                "cached_tokens": counts.cached,
                "cache_write_tokens": counts.written,
            },
            "output_tokens": counts.completion,
            "output_tokens_details": {"reasoning_tokens": counts.reasoning},
            "total_tokens": counts.prompt + counts.completion,
        }
        done = {
            "id": answer_id,
            "object": "response",
            "created_at": CREATED,
            "status": "completed",
            "model": model,
            "output": [item],
            "parallel_tool_calls": True,
            "tool_choice": "auto",
            "tools": [],
            "metadata": body.get("metadata") or {},
            "error": None,
            "incomplete_details": None,
            "usage": usage,
        }
        if not body.get("stream"):
            return Reply(body=done)
        started = {**done, "status": "in_progress", "output": [], "usage": None}
        events = [
            {"type": "response.created", "response": started},
            {"type": "response.in_progress", "response": started},
            {
                "type": "response.output_item.added",
                "output_index": 0,
                "item": {**item, "status": "in_progress", "content": []},
            },
            {
                "type": "response.content_part.added",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "part": {**part, "text": ""},
            },
        ]
        events += [
            {
                "type": "response.output_text.delta",
                "item_id": item["id"],
                "output_index": 0,
                "content_index": 0,
                "delta": piece,
                "logprobs": [],
            }
            for piece in self.text
        ]
        place = {"item_id": item["id"], "output_index": 0, "content_index": 0}
        events += [
            {"type": "response.output_text.done", **place, "text": text, "logprobs": []},
            {"type": "response.content_part.done", **place, "part": part},
            {"type": "response.output_item.done", "output_index": 0, "item": item},
            {"type": "response.completed", "response": done},
        ]
        numbered = [{**event, "sequence_number": n} for n, event in enumerate(events)]
        return Reply(events=[(event["type"], event) for event in numbered])

    # -- Embeddings ------------------------------------------------------------

    def embeddings(self, body: Any, model: str, counts: Counts) -> Reply:
        self.new_id("embedding")
        inputs = body["input"] if isinstance(body["input"], list) else [body["input"]]
        vector = [0.25, -0.5, 1.0]
        if body.get("encoding_format") == "base64":
            encoded: Any = base64.b64encode(struct.pack("<3f", *vector)).decode()
        else:
            encoded = vector
        data = [
            {"object": "embedding", "index": n, "embedding": encoded} for n in range(len(inputs))
        ]
        usage = {"prompt_tokens": counts.prompt, "total_tokens": counts.prompt}
        return Reply(body={"object": "list", "data": data, "model": model, "usage": usage})
