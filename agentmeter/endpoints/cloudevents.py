"""The client's CloudEvents endpoint: usage already in CloudEvents v1.0 form.

``record_cloudevents`` sends structured-mode envelopes (the
:mod:`agentmeter.core.cloudevent_map` shape: ``id``, ``source`` the agent,
``subject`` the user, ``type`` ``agentmeter.<payment_type>``, ``data`` the
rest) to ``POST /api/meter/cloudevents`` as
``application/cloudevents-batch+json``, 1000 per request. An envelope
without the ``projectid`` extension gets the client's project, as the
``record_*`` methods do; the server checks each envelope and stores it once
by its id.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping
from typing import Any

from ..core.cloudevent_map import BATCH_CONTENT_TYPE, CLOUDEVENTS_PATH, PROJECT_EXTENSION
from ..errors import AgentMeterValidationError
from ..models import BatchResult
from .connection import Connection
from .plan import Call, Plan, endpoint

MAX_BATCH = 1000


class CloudEventEndpoints:
    """Record usage sent as CloudEvents."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    @endpoint
    def record_cloudevents(self, envelopes: Iterable[Mapping[str, Any]]) -> Plan[BatchResult]:
        """Send CloudEvents (structured mode, dicts), 1000 per request.

        Answered like :meth:`record_events`: envelopes the server refuses come
        back in ``rejected`` (their ``index`` counts from 0 over all of
        ``envelopes``), the others are stored, each id once.
        """
        batch = [self._with_project(index, item) for index, item in enumerate(envelopes)]
        total = BatchResult()
        for start in range(0, len(batch), MAX_BATCH):
            answer = yield Call(
                "POST",
                CLOUDEVENTS_PATH,
                body=batch[start : start + MAX_BATCH],
                content_type=BATCH_CONTENT_TYPE,
            )
            part = BatchResult.from_dict(answer)
            total.accepted += part.accepted
            total.duplicates += part.duplicates
            total.rejected.extend(
                rejected.model_copy(update={"index": rejected.index + start})
                for rejected in part.rejected
            )
        return total

    def _with_project(self, index: int, envelope: Mapping[str, Any]) -> Mapping[str, Any]:
        if not isinstance(envelope, Mapping):
            raise AgentMeterValidationError.for_field(
                f"envelopes[{index}]", f"must be a dict, got {type(envelope).__name__}"
            )
        if envelope.get(PROJECT_EXTENSION):
            return envelope
        config = self._connection.config
        project = config.project_id or self._connection.transport.default_project_id
        return {**envelope, PROJECT_EXTENSION: project} if project else envelope
