"""A small registry that ties each /api/v1 view to its pydantic bodies.

One decorator both validates the request body and records the operation, so the OpenAPI document
cannot drift from what the views accept. pydantic writes the JSON Schemas (OpenAPI 3.1 uses JSON
Schema 2020-12 as is); this module only assembles paths around them.
"""

from __future__ import annotations

import functools
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import Any, TypeVar

from flask import request
from pydantic import BaseModel, ValidationError
from pydantic.json_schema import models_json_schema

from companion.api.schemas import ErrorBody
from companion.errors import APIError, from_validation_error

F = TypeVar("F", bound=Callable[..., Any])
M = TypeVar("M", bound=BaseModel)


@dataclass
class Operation:
    method: str
    path: str
    summary: str
    operation_id: str
    body: type[BaseModel] | None
    responses: dict[int, tuple[str, type[BaseModel] | str | None]]
    security: str | None
    tags: list[str] = field(default_factory=list)
    # Query parameters: name -> (description, JSON Schema, required).
    query: dict[str, tuple[str, dict[str, Any], bool]] = field(default_factory=dict)


_OPERATIONS: list[Operation] = []

SECURITY_SCHEMES = {
    "clinicKey": {
        "type": "http",
        "scheme": "bearer",
        "description": "A clinic API key from `flask --app wsgi apikey create --clinic NAME`.",
    },
    "patientCookie": {
        "type": "apiKey",
        "in": "cookie",
        "name": "companion_patient",
        "description": "Set when the patient opens their patient link.",
    },
}

# Every operation behind a credential: too many bad credentials from one address are refused
# before the next is looked at (companion.guessing).
THROTTLED = (
    "Too many requests with a missing or bad credential came from this address (code "
    "too_many_failures, with Retry-After; the credential was not looked at), or requests came "
    "too fast"
)

# Errors every operation with a body can answer.
_BODY_ERRORS: dict[int, tuple[str, type[BaseModel] | str | None]] = {
    400: ("Malformed JSON", ErrorBody),
    413: ("Body too large", ErrorBody),
    415: ("Body is not JSON", ErrorBody),
    422: ("A field is missing, of the wrong type or out of range", ErrorBody),
}


def operation(
    method: str,
    path: str,
    summary: str,
    *,
    responses: dict[int, tuple[str, type[BaseModel] | str | None]],
    body: type[BaseModel] | None = None,
    security: str | None = None,
    authenticate: Callable[[], Any] | None = None,
    query: dict[str, tuple[str, dict[str, Any], bool]] | None = None,
) -> Callable[[F], F]:
    """Register an operation. `authenticate` runs first (so a stranger gets 401, not a 422 about
    their body) and its result is passed to the view as `principal`; the parsed body as `body`."""

    def decorate(view: F) -> F:
        all_responses = dict(responses)
        if body is not None:
            all_responses = {**_BODY_ERRORS, **all_responses}
        if security is not None:
            all_responses.setdefault(401, ("Missing or invalid credentials", ErrorBody))
            all_responses.setdefault(429, (THROTTLED, ErrorBody))
        _OPERATIONS.append(
            Operation(
                method,
                path,
                summary,
                view.__name__,
                body,
                all_responses,
                security,
                query=dict(query or {}),
            )
        )
        if body is None and authenticate is None:
            return view

        @functools.wraps(view)
        def wrapper(*args: Any, **kwargs: Any) -> Any:
            if authenticate is not None:
                kwargs["principal"] = authenticate()
            if body is not None:
                kwargs["body"] = parse_body(body)
            return view(*args, **kwargs)

        return wrapper  # type: ignore[return-value]

    return decorate


def parse_body(model: type[M]) -> M:
    if request.mimetype != "application/json":
        raise APIError(415, "unsupported_media_type", "The body must be JSON (application/json).")
    raw = request.get_data(cache=True)  # raises 413 past MAX_CONTENT_LENGTH
    try:
        return model.model_validate_json(raw)
    except ValidationError as exc:
        raise from_validation_error(exc) from None


def document(title: str, version: str) -> dict[str, Any]:
    models: set[type[BaseModel]] = set()
    for op in _OPERATIONS:
        if op.body is not None:
            models.add(op.body)
        models.update(m for _, m in op.responses.values() if isinstance(m, type))
    ordered = sorted(models, key=lambda m: m.__name__)
    _, defs = models_json_schema(
        [(m, "validation") for m in ordered], ref_template="#/components/schemas/{model}"
    )

    def ref(model: type[BaseModel]) -> dict[str, str]:
        return {"$ref": f"#/components/schemas/{model.__name__}"}

    paths: dict[str, dict[str, Any]] = {}
    for op in _OPERATIONS:
        entry: dict[str, Any] = {"operationId": op.operation_id, "summary": op.summary}
        # Path templates such as /visits/{visit_id}: every one of ours is a UUID.
        names = re.findall(r"{(\w+)}", op.path)
        parameters: list[dict[str, Any]] = [
            {
                "name": n,
                "in": "path",
                "required": True,
                "schema": {"type": "string", "format": "uuid"},
            }
            for n in names
        ]
        parameters += [
            {"name": n, "in": "query", "required": req, "description": d, "schema": schema}
            for n, (d, schema, req) in op.query.items()
        ]
        if parameters:
            entry["parameters"] = parameters
        if op.security:
            entry["security"] = [{op.security: []}]
        if op.body is not None:
            entry["requestBody"] = {
                "required": True,
                "content": {"application/json": {"schema": ref(op.body)}},
            }
        responses: dict[str, Any] = {}
        for status, (description, model) in sorted(op.responses.items()):
            response: dict[str, Any] = {"description": description}
            if status == 429:
                response["headers"] = {
                    "Retry-After": {
                        "description": "Seconds to wait before trying again, when known",
                        "schema": {"type": "integer", "minimum": 0},
                    }
                }
            if isinstance(model, type):
                response["content"] = {"application/json": {"schema": ref(model)}}
            elif isinstance(model, str):
                # FHIR resources are JSON objects; CSV and the like are text.
                kind = "object" if model.endswith("json") else "string"
                response["content"] = {model: {"schema": {"type": kind}}}
            responses[str(status)] = response
        entry["responses"] = responses
        paths.setdefault(op.path, {})[op.method.lower()] = entry

    for schema in defs.get("$defs", {}).values():
        _state_no_nul(schema)
    for item in paths.values():
        for entry in item.values():
            for parameter in entry.get("parameters", []):
                _state_no_nul(parameter["schema"])

    return {
        "openapi": "3.1.0",
        "info": {"title": title, "version": version},
        "paths": paths,
        "components": {"schemas": defs.get("$defs", {}), "securitySchemes": SECURITY_SCHEMES},
    }


# The server refuses NUL in any string (companion.errors.refuse_nul_characters: PostgreSQL cannot
# store it). A string with no pattern, format or list of values says so with this pattern.
NO_NUL = "^[^\\u0000]*$"


def _state_no_nul(schema: Any) -> None:
    """Add NO_NUL to every free-text string schema inside `schema`, in place."""
    if isinstance(schema, list):
        for item in schema:
            _state_no_nul(item)
        return
    if not isinstance(schema, dict):
        return
    kinds = schema.get("type")
    is_string = kinds == "string" or (isinstance(kinds, list) and "string" in kinds)
    if is_string and not {"pattern", "format", "enum", "const"} & schema.keys():
        schema["pattern"] = NO_NUL
    for value in schema.values():
        if isinstance(value, dict | list):
            _state_no_nul(value)
