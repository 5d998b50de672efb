"""The 0.2 SDK's import path for the exceptions: the very classes of :mod:`agentmeter.errors`.

``from agentmeter.exceptions import AgentMeterAPIError`` keeps working;
new code imports from :mod:`agentmeter.errors` (or :mod:`agentmeter`).
"""

from .errors import (
    AgentMeterAPIError,
    AgentMeterConfigurationError,
    AgentMeterConnectionError,
    AgentMeterError,
    AgentMeterValidationError,
    AuthenticationError,
    BadRequestError,
    BudgetExceededError,
    ConflictError,
    NotFoundError,
    PayloadTooLargeError,
    PermissionDeniedError,
    RateLimitError,
    ServerError,
    UnprocessableEntityError,
)

__all__ = [
    "AgentMeterAPIError",
    "AgentMeterConfigurationError",
    "AgentMeterConnectionError",
    "AgentMeterError",
    "AgentMeterValidationError",
    "AuthenticationError",
    "BadRequestError",
    "BudgetExceededError",
    "ConflictError",
    "NotFoundError",
    "PayloadTooLargeError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "UnprocessableEntityError",
]
