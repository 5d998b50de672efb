"""The Gemini API, faked for the real ``google-genai`` SDK.

:class:`GeminiFake` is a handler for ``fake_server`` (conftest.py). It answers
``POST /{version}/models/{model}:generateContent`` with a
``GenerateContentResponse`` as JSON, and ``:streamGenerateContent?alt=sse``
with one server-sent event per piece of text. As the API does, every chunk
of a stream repeats the usage *so far* (``usageMetadata`` running totals:
the prompt whole from the first chunk, the output growing to its total), or
only the last chunk carries it (``usage_on="last"``).

Counts are Gemini's: ``promptTokenCount`` includes ``cachedContentTokenCount``;
``thoughtsTokenCount`` is output on top of ``candidatesTokenCount``.

Each answer has a new response id (``resp-0001``, ...). Replies put in
``first`` are given before the normal ones, one per request (a 500 for the
SDK to retry, a 400 to raise). With ``function_call`` set, the model first
asks for that function (with no arguments) and answers in text once the
request carries its result, as automatic function calling needs.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import Any

from .conftest import Reply

MODEL_VERSION = "gemini-1.5-flash-002"
_PATH = re.compile(
    r"^/[^/]+/models/(?P<model>[^:/]+):(?P<method>generateContent|streamGenerateContent)"
)
_STATUS = {400: "INVALID_ARGUMENT", 404: "NOT_FOUND", 500: "INTERNAL", 503: "UNAVAILABLE"}


def error_reply(status: int, message: str) -> Reply:
    """An API error as Gemini sends it."""
    body = {"error": {"code": status, "message": message, "status": _STATUS.get(status, "UNKNOWN")}}
    return Reply(status, body)


@dataclass
class GeminiFake:
    """``generateContent`` / ``streamGenerateContent`` with these counts."""

    prompt_tokens: int = 20  # includes cached_tokens
    candidates_tokens: int = 9
    cached_tokens: int = 0
    thoughts_tokens: int = 0
    model_version: str | None = MODEL_VERSION  # None: the response names no model
    response_ids: bool = True  # False: responses without a responseId
    usage_on: str = "every"  # which chunks of a stream carry usage: "every", "last", "none"
    text: tuple[str, ...] = ("Hello", ", ", "world")
    function_call: str | None = None
    first: list[Reply] = field(default_factory=list)
    served: list[str] = field(default_factory=list)  # the response ids answered, in order

    def __call__(self, method: str, path: str, headers: dict[str, str], body: Any) -> Reply:
        match = _PATH.match(path)
        if method != "POST" or match is None:
            return error_reply(404, f"{method} {path}")
        if self.first:
            return self.first.pop(0)
        response_id = f"resp-{len(self.served) + 1:04d}"
        self.served.append(response_id)
        if self._asks_for_the_function(body):
            assert self.function_call is not None
            parts = [{"functionCall": {"name": self.function_call, "args": {}}}]
            return Reply(body=self._response([parts], 1, response_id)[0])
        if match["method"] == "generateContent":
            whole = [[{"text": "".join(self.text)}]]
            return Reply(body=self._response(whole, 1, response_id)[0])
        pieces = [[{"text": piece}] for piece in self.text]
        chunks = self._response(pieces, len(pieces), response_id)
        return Reply(events=[(None, chunk) for chunk in chunks])

    def _asks_for_the_function(self, body: Any) -> bool:
        if self.function_call is None:
            return False
        last = body["contents"][-1]
        return not any("functionResponse" in part for part in last.get("parts", []))

    def _response(self, pieces: list[list[dict[str, Any]]], n: int, rid: str) -> list[Any]:
        """One chunk per piece, each with the running usage it reports."""
        chunks = []
        for i, parts in enumerate(pieces, start=1):
            chunk: dict[str, Any] = {
                "candidates": [{"content": {"role": "model", "parts": parts}, "index": 0}]
            }
            if i == n:
                chunk["candidates"][0]["finishReason"] = "STOP"
            if self.usage_on == "every" or (self.usage_on == "last" and i == n):
                chunk["usageMetadata"] = self._usage(self.candidates_tokens * i // n)
            if self.model_version is not None:
                chunk["modelVersion"] = self.model_version
            if self.response_ids:
                chunk["responseId"] = rid
            chunks.append(chunk)
        return chunks

    def _usage(self, candidates: int) -> dict[str, int]:
        usage = {
            "promptTokenCount": self.prompt_tokens,
            "candidatesTokenCount": candidates,
            "totalTokenCount": self.prompt_tokens + candidates + self.thoughts_tokens,
        }
        if self.cached_tokens:
            usage["cachedContentTokenCount"] = self.cached_tokens
        if self.thoughts_tokens:
            usage["thoughtsTokenCount"] = self.thoughts_tokens
        return usage
