"""Client settings, from arguments or ``AGENTMETER_*`` environment variables.

Explicit arguments win over the environment. ``AgentMeterClient(**config.model_dump())``
works, and the key stays a :class:`~pydantic.SecretStr` on the way.
"""

from __future__ import annotations

import builtins
import os
from collections.abc import Mapping
from decimal import Decimal
from typing import Any

from pydantic import ConfigDict, Field, SecretStr, field_validator

from .core.fields import Money
from .errors import AgentMeterConfigurationError
from .models import AgentMeterModel

DEFAULT_BASE_URL = "https://api.agentmeter.money"

# Environment variable -> config field.
ENVIRONMENT = {
    "AGENTMETER_API_KEY": "api_key",
    "AGENTMETER_BASE_URL": "base_url",
    "AGENTMETER_PROJECT_ID": "project_id",
    "AGENTMETER_AGENT_ID": "agent_id",
    "AGENTMETER_USER_ID": "user_id",
    "AGENTMETER_TIMEOUT": "timeout",
    "AGENTMETER_RETRY_ATTEMPTS": "retry_attempts",
}


class AgentMeterConfig(AgentMeterModel):
    """Everything a client needs to know; all optional.

    With neither ``api_key`` nor ``base_url`` the client runs embedded, on a
    local ledger file (see :mod:`agentmeter.transport.local`). A misspelt
    setting is an error, not silently ignored.
    """

    model_config = ConfigDict(extra="forbid")

    api_key: SecretStr | None = None
    project_id: str | None = None
    agent_id: str | None = None
    user_id: str | None = None
    base_url: str | None = None
    timeout: float = Field(default=10.0, gt=0, le=600)
    connect_timeout: float = Field(default=5.0, gt=0, le=600)
    retry_attempts: int = Field(default=3, ge=0, le=20)
    retry_deadline: float = Field(default=30.0, gt=0, le=3600)
    max_retry_wait: float = Field(default=30.0, ge=0, le=3600)
    batch_size: int = Field(default=500, ge=1, le=1000)
    budget_cache_ttl: float = Field(default=5.0, ge=0, le=3600)
    # How long a project's price table (its own prices, its markup) is reused.
    price_cache_ttl: float = Field(default=60.0, ge=0, le=86_400)
    # The 0.2 default prices, used where a capture surface is given none.
    api_request_unit_price: Money = Decimal("0.001")
    input_token_price: Money = Decimal("0.000004")
    output_token_price: Money = Decimal("0.000001")

    @field_validator("base_url")
    @classmethod
    def _strip_slash(cls, value: str | None) -> str | None:
        return value.rstrip("/") if value else None

    @classmethod
    def from_env(
        cls, environ: Mapping[str, str] | None = None, **overrides: Any
    ) -> AgentMeterConfig:
        """Read ``AGENTMETER_*`` variables; keyword arguments that are not None win."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {
            field: env[name] for name, field in ENVIRONMENT.items() if env.get(name)
        }
        values.update({key: value for key, value in overrides.items() if value is not None})
        return cls(**values)

    def dict(self, **options: Any) -> builtins.dict[str, Any]:
        """The settings by name, as 0.2 had them: ``AgentMeterClient(**config.dict())``.

        Pydantic 2 deprecates ``dict()`` for ``model_dump()``; this is the
        same, without the deprecation warning.
        """
        return self.model_dump(**options)

    @property
    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key else None

    def project_for(self, project_id: str | None, fallback: str | None = None) -> str:
        """The project an event or request is for: the one given, else this
        config's, else ``fallback`` (the embedded ledger's default project)."""
        chosen = project_id or self.project_id or fallback
        if not chosen:
            raise AgentMeterConfigurationError(
                "project_id is not set: pass project_id=..., or set AGENTMETER_PROJECT_ID"
            )
        return chosen
