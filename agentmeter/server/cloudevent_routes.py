"""The CloudEvents route, ``POST /api/meter/cloudevents`` (docs/cloudevents.md).

No ``from __future__ import annotations`` here: the route is made inside a
function, and FastAPI reads its annotations (the caller's ``Who``
dependency) as objects.
"""

from collections.abc import Callable
from datetime import datetime
from enum import Enum
from typing import Annotated, Any, Literal

from fastapi import Depends, FastAPI, Request, Response
from pydantic import BaseModel, Field
from starlette.concurrency import run_in_threadpool

from ..core.cloudevent_map import BATCH_CONTENT_TYPE, STRUCTURED_CONTENT_TYPE
from ..ledger.api import LedgerAPI, Principal
from ..ledger.cloudevent_api import CLOUDEVENTS_PATH, media_type_of, record_cloudevents
from ..ledger.event_input import MAX_BATCH_EVENTS
from ..models import BatchResult, MeterEventResponse
from .http import json_response, read_json
from .openapi import request_body


class CloudEventEnvelope(BaseModel):
    """A usage event as a structured-mode CloudEvent v1.0 (documentation only:
    the server reads the body itself)."""

    specversion: Literal["1.0"]
    id: str = Field(min_length=1, description="the event id (idempotency key)")
    source: str = Field(min_length=1, description="the agent")
    type: Literal[
        "agentmeter.api_request_pay", "agentmeter.token_based_pay", "agentmeter.instant_pay"
    ]
    subject: str | None = Field(None, description="the user")
    time: datetime | None = Field(None, description="the event's time, RFC 3339 with an offset")
    projectid: str | None = Field(None, description="the project (else the key's own)")
    datacontenttype: Literal["application/json"] | None = None
    data: dict[str, Any] = Field(
        default_factory=dict, description="the payment type's own fields and metadata"
    )


def _request_body() -> dict[str, Any]:
    """One envelope or an array of them, by media type."""
    one = request_body("CloudEvent", CloudEventEnvelope)["requestBody"]["content"]
    schema = one["application/json"]["schema"]
    batch = {"type": "array", "items": schema, "maxItems": MAX_BATCH_EVENTS}
    content = {STRUCTURED_CONTENT_TYPE: {"schema": schema}, BATCH_CONTENT_TYPE: {"schema": batch}}
    return {"requestBody": {"required": True, "content": content}}


def install_cloudevent_routes(
    app: FastAPI,
    api: LedgerAPI,
    principal: Callable[..., Any],
    errors: dict[int | str, Any],
) -> None:
    Who = Annotated[Principal, Depends(principal)]
    tags: list[str | Enum] = ["events"]
    error_model = errors[422]["model"]
    responses: dict[int | str, Any] = {
        **errors,
        200: {"model": BatchResult, "description": f"a batch ({BATCH_CONTENT_TYPE})"},
        409: {"model": error_model, "description": "the id was recorded with other content"},
        415: {"model": error_model, "description": "not one of the two structured media types"},
        501: {"model": error_model, "description": "the server lacks the cloudevents package"},
    }

    @app.post(
        CLOUDEVENTS_PATH, status_code=201, tags=tags, response_model=MeterEventResponse,
        responses=responses, openapi_extra=_request_body(),
        description="Record usage sent as CloudEvents v1.0 in structured mode: one "
        f"({STRUCTURED_CONTENT_TYPE}, 201) or a batch ({BATCH_CONTENT_TYPE}, 200).",
    )  # fmt: skip
    async def record(request: Request, caller: Who) -> Response:
        content_type = request.headers.get("content-type")
        media_type_of(content_type)  # 415 before reading a body of the wrong kind
        body = await read_json(request)
        status, answer = await run_in_threadpool(
            record_cloudevents, api, caller, content_type, body
        )
        return json_response(answer, status)
