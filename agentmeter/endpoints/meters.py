"""The client's user-meter endpoints: read, set, add to and reset a user's meter.

A meter is a user's usage since its last reset and an optional budget
threshold. Setting or resetting one tells the client (through the
connection's hooks), whose budget guard then drops its cached reading.
Each method is a plan (:mod:`agentmeter.endpoints.plan`).
"""

from __future__ import annotations

from ..core.wire import IncrementMeterBody, MeterKey, SetMeterBody
from ..errors import NotFoundError
from ..models import UserMeter
from .connection import Connection
from .inputs import MoneyInput
from .plan import Blocking, Call, Plan, endpoint


class MeterEndpoints:
    """Each user's meter: usage since the last reset, and a budget threshold."""

    def __init__(self, connection: Connection) -> None:
        self._connection = connection

    def _key(self, user_id: str | None, project_id: str | None) -> MeterKey:
        return MeterKey(
            project_id=self._connection.resolve_project(project_id),
            user_id=self._connection.resolve_user(user_id),
        )

    @endpoint
    def get_user_meter(
        self, user_id: str | None = None, project_id: str | None = None
    ) -> Plan[UserMeter]:
        """The user's usage and threshold (``threshold_amount`` is None when never set).

        A user never charged nor given a budget has a zero meter (the server
        answers 404 for it; this method turns that into the zero meter).
        """
        key = self._key(user_id, project_id)
        try:
            answer = yield Call("GET", "/api/meter/usage", params=key.to_params())
        except NotFoundError:
            return UserMeter(project_id=key.project_id, user_id=key.user_id)
        return UserMeter.from_dict(answer)

    @endpoint
    def set_user_meter(
        self,
        threshold_amount: MoneyInput,
        user_id: str | None = None,
        project_id: str | None = None,
    ) -> Plan[UserMeter]:
        """Set the user's budget threshold."""
        connection = self._connection
        body = SetMeterBody(
            project_id=connection.resolve_project(project_id),
            user_id=connection.resolve_user(user_id),
            threshold_amount=threshold_amount,
        )
        answer = yield Call("PUT", "/api/meter", body=body.to_params())
        connection.meter_changed(body.project_id, body.user_id)
        return UserMeter.from_dict(answer)

    @endpoint
    def increment_user_meter(
        self, amount: MoneyInput, user_id: str | None = None, project_id: str | None = None
    ) -> Plan[UserMeter]:
        """Add ``amount`` to the user's usage (not retried where it may have been applied)."""
        connection = self._connection
        body = IncrementMeterBody(
            project_id=connection.resolve_project(project_id),
            user_id=connection.resolve_user(user_id),
            amount=amount,
        )
        answer = yield Call("POST", "/api/meter/increment", body=body.to_params(), idempotent=False)
        return UserMeter.from_dict(answer)

    @endpoint
    def reset_user_meter(
        self, user_id: str | None = None, project_id: str | None = None
    ) -> Plan[UserMeter]:
        """Set the user's usage back to 0 (``last_reset_at`` becomes now).

        Events tracked before the reset are delivered first (the default
        tracker is flushed, bounded), so they count before it, not after.
        """
        key = self._key(user_id, project_id)
        yield Blocking(self._connection.settle_before_meter_change)
        # Not retried where it may have been applied: a late retry would wipe
        # usage charged after the first reset.
        answer = yield Call("POST", "/api/meter/reset", body=key.to_params(), idempotent=False)
        self._connection.meter_changed(key.project_id, key.user_id)
        return UserMeter.from_dict(answer)
