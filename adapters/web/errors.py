"""One error shape for the HTTP API: ``{"error": <code>, "message": <text>}``.

FastAPI's own answers (validation errors, unknown routes, wrong methods) are translated to
it here, so a client parses one shape whatever refused its request. Validation errors add
``details`` (location, pydantic type and message of each problem; never the input, which
may be large or carry what the client would not want echoed). A JSON-body route sent
another content type answers 415. The published OpenAPI schema advertises this shape and
the limits the server enforces from the configuration.
"""

from __future__ import annotations

from typing import Any

from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.openapi.utils import get_openapi
from fastapi.responses import JSONResponse
from fastapi.routing import APIRoute
from starlette.exceptions import HTTPException

from core.config import Settings

ERROR_SCHEMA = "Error"
_CODES = {
    400: "invalid_request",
    401: "unauthorized",
    403: "forbidden",
    404: "not_found",
    405: "method_not_allowed",
    406: "not_acceptable",
    413: "invalid_request",
    415: "unsupported_media_type",
    429: "too_many_requests",
}
_MESSAGES = {404: "No such route.", 405: "This route does not accept that method."}


def error_response(
    status: int, code: str, message: str, headers: dict[str, str] | None = None, **extra: Any
) -> JSONResponse:
    return JSONResponse({"error": code, "message": message, **extra}, status, headers=headers)


def _is_json(content_type: str) -> bool:
    media = content_type.split(";", 1)[0].strip().lower()
    return media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )


def _where(loc: tuple[Any, ...] | list[Any]) -> str:
    return ".".join(str(p) for p in loc)


async def _validation(request: Request, exc: RequestValidationError) -> JSONResponse:
    route = request.scope.get("route")
    ctype = request.headers.get("content-type")
    if (
        isinstance(route, APIRoute)
        and route.body_field is not None
        and ctype
        and not _is_json(ctype)
    ):
        return error_response(
            415,
            "unsupported_media_type",
            f"Send the body as application/json (got {ctype.split(';', 1)[0][:80]}).",
        )
    details = [
        {"loc": _where(e.get("loc", ())), "type": e.get("type", ""), "message": e.get("msg", "")}
        for e in exc.errors()
    ]
    said = "; ".join(f"{d['loc']}: {d['message']}" for d in details[:5])
    return error_response(422, "invalid_request", f"Invalid request: {said}", details=details)


async def _http(request: Request, exc: HTTPException) -> JSONResponse:
    status = exc.status_code
    message = _MESSAGES.get(status) or (exc.detail if isinstance(exc.detail, str) else "")
    return error_response(
        status,
        _CODES.get(status, f"http_{status}"),
        message or "The request was refused.",
        headers=dict(exc.headers) if exc.headers else None,
    )


async def _internal(request: Request, exc: Exception) -> JSONResponse:
    # logged by the server; the client gets the shape, never the exception's text
    return error_response(500, "internal_error", "Something went wrong on our side; try again.")


def install(app: FastAPI, settings: Settings) -> None:
    """Register the handlers and publish the shape and the enforced limits."""
    app.add_exception_handler(RequestValidationError, _validation)  # type: ignore[arg-type]
    app.add_exception_handler(HTTPException, _http)  # type: ignore[arg-type]
    app.add_exception_handler(Exception, _internal)

    def openapi() -> dict[str, Any]:
        if app.openapi_schema is None:
            schema = get_openapi(
                title=app.title,
                version=app.version,
                description=app.description,
                routes=app.routes,
            )
            publish(schema, settings)
            app.openapi_schema = schema
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]


def publish(schema: dict[str, Any], settings: Settings) -> None:
    """The error shape in place of FastAPI's ``{"detail": …}``, and the configured limits."""
    comps = schema.setdefault("components", {}).setdefault("schemas", {})
    comps.pop("HTTPValidationError", None)
    comps.pop("ValidationError", None)
    comps[ERROR_SCHEMA] = {
        "title": ERROR_SCHEMA,
        "type": "object",
        "required": ["error", "message"],
        "properties": {
            "error": {"type": "string", "description": "stable machine-readable code"},
            "message": {"type": "string", "description": "what went wrong, for a person"},
            "details": {
                "type": "array",
                "description": "validation errors only: each problem's location and type",
                "items": {
                    "type": "object",
                    "properties": {
                        "loc": {"type": "string"},
                        "type": {"type": "string"},
                        "message": {"type": "string"},
                    },
                },
            },
        },
    }
    ref = {"$ref": f"#/components/schemas/{ERROR_SCHEMA}"}
    for ops in schema.get("paths", {}).values():
        for op in ops.values():
            responses = op.get("responses", {})
            if "422" in responses:
                responses["422"] = {
                    "description": "Invalid request",
                    "content": {"application/json": {"schema": ref}},
                }
            if op.get("requestBody"):
                responses.setdefault(
                    "415",
                    {
                        "description": "The body is not application/json",
                        "content": {"application/json": {"schema": ref}},
                    },
                )
    chat = comps.get("ChatRequest", {}).get("properties", {})
    if "question" in chat:
        chat["question"]["maxLength"] = settings.chat.max_question_chars
    if "spaces" in chat:
        chat["spaces"]["maxItems"] = settings.chat.max_spaces
