"""The argument types endpoint methods accept for a moment and an amount of money.

Loose on purpose: the wire models in :mod:`agentmeter.core.wire` check and
convert them (a date string, a ``float`` price), so the methods stay thin.
"""

from __future__ import annotations

from datetime import date, datetime
from decimal import Decimal

Moment = datetime | date | str
MoneyInput = Decimal | float | int | str
