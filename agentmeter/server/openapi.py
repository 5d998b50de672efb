"""Request-body schemas for the OpenAPI document.

The server reads bodies itself (to parse money with exact decimals, never
through a float), so FastAPI cannot see their models; each route names its
model here and the document gets the model's validation schema. Input
schemas carry an ``Input`` suffix, apart from FastAPI's response schemas.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI
from fastapi.openapi.utils import get_openapi
from pydantic import BaseModel, TypeAdapter

_REF = "#/components/schemas/{model}Input"
_input_schemas: dict[str, dict[str, Any]] = {}


def request_body(name: str, source: type[BaseModel] | TypeAdapter[Any]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose JSON body is ``source``."""
    if isinstance(source, TypeAdapter):
        schema = source.json_schema(ref_template=_REF)
    else:
        schema = source.model_json_schema(ref_template=_REF)
    for def_name, definition in schema.pop("$defs", {}).items():
        _input_schemas[f"{def_name}Input"] = definition
    _input_schemas[f"{name}Input"] = schema
    ref = {"$ref": _REF.format(model=name)}
    return {"requestBody": {"required": True, "content": {"application/json": {"schema": ref}}}}


def install_openapi(app: FastAPI) -> None:
    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            document = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            schemas = document.setdefault("components", {}).setdefault("schemas", {})
            schemas.update(_input_schemas)
            app.openapi_schema = document
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
