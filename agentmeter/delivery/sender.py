"""What the tracker needs from a client: its settings, its transport, and a way to send a batch.

Protocols, so the delivery stage never imports the client (which sits above
it and holds a tracker): any object with these members will do, a fake in a
test as well as :class:`agentmeter.AgentMeterClient`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from typing import Any, Protocol

from ..config import AgentMeterConfig
from ..models import BatchResult
from ..transport import Transport


class BatchSender(Protocol):
    def send_batch(
        self,
        events: Sequence[Mapping[str, Any]],
        *,
        sleep: Callable[[float], None] | None = None,
    ) -> BatchResult:
        """Send events in wire form under the retry policy (``sleep`` waits between tries)."""
        ...


class TrackerClient(BatchSender, Protocol):
    @property
    def config(self) -> AgentMeterConfig: ...

    @property
    def transport(self) -> Transport: ...
