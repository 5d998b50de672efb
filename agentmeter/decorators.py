"""``@meter_*`` decorators: one line bills every call of a function.

They work on plain functions, methods, ``staticmethod``/``classmethod``,
``async def``, generators and async generators (billed once, when iteration
ends), keep the name, docstring and signature, and cost a few microseconds:
the event goes to a tracker (the client's default one when given a
client), never over the network on the caller's time.

>>> @meter_api_request_pay(client, unit_price="0.05")       # doctest: +SKIP
... def search(query, user_id):
...     return run_search(query)

The first argument may be a client or a tracker. ``user_id`` is read from
the argument named ``user_id_param``, by keyword or by position (or its
default when it is not passed).
"""

from __future__ import annotations

import inspect
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from .capture.charge import Charge, check_sink
from .capture.metered import METERED_MARK, Meter, wrap
from .errors import AgentMeterValidationError
from .models import PaymentType

F = TypeVar("F")


def _decorator(
    sink: Any,
    charge: Charge,
    *,
    user_id_param: str = "user_id",
    tokens_extractor: Callable[..., Any] | None = None,
    condition: Callable[..., Any] | None = None,
    enforce_budget: bool = False,
    bill_on_error: bool = False,
    strict: bool = False,
    metadata: dict[str, Any] | None = None,
) -> Callable[[F], F]:
    check_sink(sink)

    def decorate(target: Any) -> Any:
        if isinstance(target, (staticmethod, classmethod)):
            return type(target)(decorate(target.__func__))
        if not callable(target):
            raise TypeError(f"cannot meter {target!r}: it is not callable")
        meter = Meter(
            sink,
            charge,
            target,
            user_id_param=user_id_param,
            tokens_extractor=tokens_extractor,
            condition=condition,
            enforce_budget=enforce_budget,
            bill_on_error=bill_on_error,
            strict=strict,
            metadata=metadata,
        )
        return wrap(meter, target)

    return decorate


def meter_api_request_pay(
    client: Any,
    unit_price: Any = None,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id_param: str = "user_id",
    api_calls: int = 1,
    **options: Any,
) -> Callable[[F], F]:
    """Bill ``api_calls x unit_price`` per successful call (default price: the client's)."""
    charge = Charge.declare(
        PaymentType.API_REQUEST_PAY,
        unit_price=unit_price,
        api_calls=api_calls,
        project_id=project_id,
        agent_id=agent_id,
    )
    return _decorator(client, charge, user_id_param=user_id_param, **options)


def meter_token_based_pay(
    client: Any,
    input_token_price: Any = None,
    output_token_price: Any = None,
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id_param: str = "user_id",
    tokens_extractor: Callable[..., Any] | None = None,
    *,
    model: str | None = None,
    **options: Any,
) -> Callable[[F], F]:
    """Bill the tokens of each successful call.

    Prices not given are ``model``'s list prices (else those of
    ``metadata["model"]``, else the defaults); a model no price is known for
    is recorded at 0 with ``metadata["unpriced"]``.

    ``tokens_extractor(*args, result=result, **kwargs)`` returns
    ``(tokens_in, tokens_out)``; without one, usage is found in OpenAI,
    Anthropic and LangChain result shapes (for generators: in the yielded
    chunks). An unknown shape bills 0 tokens.
    """
    legacy = options.pop("extract_tokens", None)  # the 0.2 name, when it is a function
    if tokens_extractor is None and callable(legacy):
        tokens_extractor = legacy
    charge = Charge.declare(
        PaymentType.TOKEN_BASED_PAY,
        input_token_price=input_token_price,
        output_token_price=output_token_price,
        project_id=project_id,
        agent_id=agent_id,
        model=model,
    )
    return _decorator(
        client, charge, user_id_param=user_id_param, tokens_extractor=tokens_extractor, **options
    )


def meter_instant_pay(
    client: Any,
    amount: Any = None,
    description: str = "",
    project_id: str | None = None,
    agent_id: str | None = None,
    user_id_param: str = "user_id",
    condition_func: Callable[..., Any] | None = None,
    **options: Any,
) -> Callable[[F], F]:
    """Charge ``amount`` per successful call, or only when ``condition_func(*args, **kwargs)``."""
    condition = condition_func or options.pop("condition", None)  # 0.2 also said condition=
    if amount is None:
        raise AgentMeterValidationError.for_field("amount", "meter_instant_pay needs an amount")
    charge = Charge.declare(
        PaymentType.INSTANT_PAY,
        amount=amount,
        description=description,
        project_id=project_id,
        agent_id=agent_id,
    )
    return _decorator(client, charge, user_id_param=user_id_param, condition=condition, **options)


_BY_TYPE: dict[PaymentType, Callable[..., Callable[[Any], Any]]] = {
    PaymentType.API_REQUEST_PAY: meter_api_request_pay,
    PaymentType.TOKEN_BASED_PAY: meter_token_based_pay,
    PaymentType.INSTANT_PAY: meter_instant_pay,
}


def meter_function(
    client: Any, payment_type: PaymentType | str = PaymentType.API_REQUEST_PAY, **settings: Any
) -> Callable[[F], F]:
    """The decorator of ``payment_type`` with ``settings`` (prices, amount, options)."""
    try:
        kind = PaymentType(payment_type)
    except ValueError:
        raise AgentMeterValidationError.for_field(
            "payment_type", f"must be one of {[p.value for p in PaymentType]}"
        ) from None
    return _BY_TYPE[kind](client, **settings)


def meter_agent(
    client: Any,
    payment_type: PaymentType | str = PaymentType.API_REQUEST_PAY,
    methods_to_meter: Iterable[str] | None = None,
    **settings: Any,
) -> Callable[[type], type]:
    """Meter methods of a class: the listed ones, or by default every public one.

    Private methods (``_name``) are never metered; properties are left alone.
    """
    decorate = meter_function(client, payment_type, **settings)

    def decorate_class(cls: type) -> type:
        for name in _method_names(cls, methods_to_meter):
            raw = inspect.getattr_static(cls, name)
            target = raw.__func__ if isinstance(raw, (staticmethod, classmethod)) else raw
            if getattr(target, METERED_MARK, False):
                continue
            setattr(cls, name, decorate(raw))
        return cls

    return decorate_class


def _method_names(cls: type, listed: Iterable[str] | None) -> list[str]:
    if listed is None:
        return [
            name
            for name in dir(cls)
            if not name.startswith("_") and _is_method(inspect.getattr_static(cls, name))
        ]
    names = [listed] if isinstance(listed, str) else list(listed)
    for name in names:
        if name.startswith("_"):
            raise AgentMeterValidationError.for_field(
                "methods_to_meter", f"{name!r} is private; private methods are never metered"
            )
        if not _is_method(inspect.getattr_static(cls, name, None)):
            raise AgentMeterValidationError.for_field(
                "methods_to_meter", f"{cls.__name__} has no method {name!r}"
            )
    return names


def _is_method(raw: Any) -> bool:
    return isinstance(raw, (staticmethod, classmethod)) or inspect.isfunction(raw)


__all__ = [
    "meter_agent",
    "meter_api_request_pay",
    "meter_function",
    "meter_instant_pay",
    "meter_token_based_pay",
]
