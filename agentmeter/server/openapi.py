"""Request-body and query-parameter schemas for the OpenAPI document.

The server reads bodies itself (to parse money with exact decimals, never
through a float), so FastAPI cannot see their models; each route names its
model here and the document gets the model's validation schema. Input
schemas carry an ``Input`` suffix, apart from FastAPI's response schemas.

Query parameters are documented the same way rather than declared in the
route signatures: FastAPI would validate declared ones itself, with other
rules and messages than :mod:`agentmeter.ledger.api`, and the two modes
(server and embedded) must answer a request alike.
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


def query_parameters(model: type[BaseModel]) -> dict[str, Any]:
    """``openapi_extra`` for a route whose query string is ``model``."""
    schema = model.model_json_schema(ref_template=_REF)
    for def_name, definition in schema.pop("$defs", {}).items():
        _input_schemas[f"{def_name}Input"] = definition
    required = set(schema.get("required", []))
    parameters = []
    for name, field_schema in schema["properties"].items():
        parameter: dict[str, Any] = {"name": name, "in": "query", "schema": field_schema}
        if name == "project_id":  # a project key's own project when absent
            parameter["description"] = "defaults to the project of the key"
        else:
            parameter["required"] = name in required
        parameters.append(parameter)
    return {"parameters": parameters}


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
