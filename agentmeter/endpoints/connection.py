"""What every endpoint group shares: where requests go, and the client's defaults.

The client makes one :class:`Connection` and hands it to each endpoint group
(events, queries, meters, admin, prices). The groups tell the client what
happened (a meter changed, events were delivered) through the hooks held
here, not by calling the client: this layer sits below the client and never
imports it. The hooks only touch memory (caches), so a plan may call them
from the event loop too; the one that blocks, ``settle_before_meter_change``,
is yielded as a :class:`~agentmeter.endpoints.plan.Blocking` step.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

from ..config import AgentMeterConfig
from ..core.price_book import PriceBook
from ..transport import Transport


def _ignore(*_: object) -> None:
    """The hooks' default: nobody is listening."""


@dataclass(eq=False)
class Connection:
    """The settings and (sync) transport every endpoint group sends through,
    and the client's hooks for what those requests change. The async client
    shares its sync twin's connection and only carries the plans elsewhere."""

    config: AgentMeterConfig
    transport: Transport
    # Deliver what was tracked so far, before a meter reset.
    settle_before_meter_change: Callable[[], None] = field(default=_ignore, repr=False)
    # A user's meter (project_id, user_id) was set or reset: cached readings are stale.
    meter_changed: Callable[[str, str], None] = field(default=_ignore, repr=False)
    # These wire-form events are stored now (the costs are in the server's meters).
    events_delivered: Callable[[Sequence[Mapping[str, Any]]], None] = field(
        default=_ignore, repr=False
    )

    # Each project's price table, cached (set by the client; None: the catalog alone).
    price_book: PriceBook | None = field(default=None, repr=False)

    def resolve_project(self, project_id: str | None) -> str:
        """The project given, else the client's, else the transport's; never empty."""
        return self.config.project_for(project_id, self.transport.default_project_id)

    def resolve_agent(self, agent_id: str | None) -> str:
        """The agent given, else the client's, else ``"default"``."""
        return agent_id or self.config.agent_id or "default"

    def resolve_user(self, user_id: str | None) -> str:
        """The user given, else the client's, else ``"anonymous"``."""
        return user_id or self.config.user_id or "anonymous"
