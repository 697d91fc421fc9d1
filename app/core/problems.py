"""RFC 9457 problem+json responses: the single place where errors become HTTP."""

import logging
from collections.abc import Sequence
from typing import Any

import asyncpg
from fastapi import FastAPI, Request
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from pydantic import BaseModel, ConfigDict, Field
from pydantic.json_schema import models_json_schema
from sqlalchemy.exc import DBAPIError
from sqlalchemy.exc import TimeoutError as PoolTimeout
from starlette.exceptions import HTTPException as StarletteHTTPException

from app.core.db_errors import DatabaseUnreachable, brief, unavailable_error
from app.core.errors import (
    PROBLEM_TYPE_PREFIX,
    DomainError,
    FieldError,
    InvalidInput,
    MalformedRequest,
    MethodNotAllowed,
    NotFound,
)
from app.core.request_context import current_request_id

PROBLEM_MEDIA_TYPE = "application/problem+json"
_COMPONENT_REF = "#/components/schemas/{model}"

logger = logging.getLogger(__name__)

# What a lost or unreachable database raises, below the unit of work: SQLAlchemy's errors,
# asyncpg's own (COPY runs on the driver's connection), a connect that failed.
_DATABASE_ERRORS: tuple[type[Exception], ...] = (
    DBAPIError,
    PoolTimeout,
    DatabaseUnreachable,
    asyncpg.PostgresError,
    asyncpg.InterfaceError,
)


class ProblemFieldError(BaseModel):
    """One invalid input value."""

    location: str = Field(description="Where the value was: body, query, path or header.")
    pointer: str = Field(description="RFC 6901 JSON pointer to the value inside its location.")
    message: str


class Problem(BaseModel):
    """An RFC 9457 problem detail; every error response of the API has this shape."""

    model_config = ConfigDict(
        json_schema_extra={
            "examples": [
                {
                    "type": "urn:cdp:problem:validation-error",
                    "title": "Invalid input",
                    "status": 422,
                    "detail": "1 invalid value in the request",
                    "instance": "/v1/projects",
                    "request_id": "0193a6f1c1e27c3c9e1f4b3c2a1d0e9f",
                    "errors": [
                        {"location": "body", "pointer": "/name", "message": "Field required"}
                    ],
                }
            ]
        }
    )

    type: str = Field(description="A stable URN naming the kind of problem.")
    title: str
    status: int
    detail: str
    # Always sent (`problem_body`), so required: a generated client types them as
    # `str | None`, not as possibly absent.
    instance: str | None = Field(description="The request path.")
    request_id: str | None
    errors: list[ProblemFieldError] = Field(
        default_factory=list, description="Only on validation problems (422)."
    )


class ProblemResponse(JSONResponse):
    media_type = PROBLEM_MEDIA_TYPE


def problem_body(
    *,
    status: int,
    slug: str,
    title: str,
    detail: str,
    instance: str | None,
    errors: Sequence[dict[str, str]] = (),
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "type": PROBLEM_TYPE_PREFIX + slug,
        "title": title,
        "status": status,
        "detail": detail,
        "instance": instance,
        "request_id": current_request_id(),
    }
    if errors:
        body["errors"] = list(errors)
    return body


def domain_error_response(error: DomainError, instance: str | None) -> ProblemResponse:
    errors = [_field_error_dict(e) for e in error.errors]
    body = problem_body(
        status=error.status_code,
        slug=error.slug,
        title=error.title,
        detail=error.detail,
        instance=instance,
        errors=errors,
    )
    return ProblemResponse(body, status_code=error.status_code, headers=error.headers)


def _field_error_dict(error: FieldError) -> dict[str, str]:
    return {"location": error.location, "pointer": error.pointer, "message": error.message}


def json_pointer(parts: Sequence[str | int]) -> str:
    """RFC 6901: `~` and `/` inside a key are escaped."""
    escaped = (str(p).replace("~", "~0").replace("/", "~1") for p in parts)
    return "".join("/" + part for part in escaped)


def validation_error_to_domain(exc: RequestValidationError) -> DomainError:
    """Pydantic's error list, as JSON pointers; a body that is not JSON is a 400."""
    field_errors: list[FieldError] = []
    for item in exc.errors():
        if item.get("type") == "json_invalid":
            return MalformedRequest("The request body is not valid JSON.")
        location, *path = item.get("loc", ("body",))
        field_errors.append(
            FieldError(
                location=str(location), pointer=json_pointer(path), message=str(item.get("msg"))
            )
        )
    count = len(field_errors)
    noun = "value" if count == 1 else "values"
    return InvalidInput(f"{count} invalid {noun} in the request.", errors=field_errors)


async def _on_domain_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, DomainError):
        raise exc
    return domain_error_response(exc, request.url.path)


async def _on_validation_error(request: Request, exc: Exception) -> Response:
    if not isinstance(exc, RequestValidationError):
        raise exc
    return domain_error_response(validation_error_to_domain(exc), request.url.path)


async def _on_database_error(request: Request, exc: Exception) -> Response:
    """A database that is away is a 503 with Retry-After; any other database error is a
    bug and goes on to the 500 guard."""
    unavailable = unavailable_error(exc)
    if unavailable is None:
        raise exc
    # The error's type and first line tell a restart from a network cut.
    logger.warning("database unavailable", extra={"error": brief(exc)})
    return domain_error_response(unavailable, request.url.path)


async def _on_http_exception(request: Request, exc: Exception) -> Response:
    """Errors Starlette raises itself: no route, wrong method."""
    if not isinstance(exc, StarletteHTTPException):
        raise exc
    error: DomainError
    if isinstance(exc.__cause__, DomainError):
        # FastAPI wraps errors raised while reading the body (our 413 while streaming).
        error = exc.__cause__
    elif exc.status_code == 400:
        # FastAPI's own refusal of a body it cannot decode (not UTF-8, say): the same
        # problem type as broken JSON, so clients handle one kind.
        error = MalformedRequest(f"The request body could not be read: {exc.detail}.")
    elif exc.status_code == 404:
        error = NotFound(f"No resource at {request.url.path}.")
    elif exc.status_code == 405:
        error = MethodNotAllowed(
            f"{request.method} is not allowed on {request.url.path}.",
            headers=dict(exc.headers or {}),
        )
    else:
        body = problem_body(
            status=exc.status_code,
            slug="http-error",
            title="HTTP error",
            detail=str(exc.detail),
            instance=request.url.path,
        )
        return ProblemResponse(body, status_code=exc.status_code, headers=exc.headers)
    return domain_error_response(error, request.url.path)


def internal_error_response(instance: str) -> ProblemResponse:
    """What an unexpected error shows: no stack trace, the request id to find it in the logs."""
    body = problem_body(
        status=500,
        slug="internal-error",
        title="Internal server error",
        detail="The server failed to handle the request; the request id identifies it in logs.",
        instance=instance,
    )
    return ProblemResponse(body, status_code=500)


def install_problem_handlers(app: FastAPI) -> None:
    app.add_exception_handler(DomainError, _on_domain_error)
    app.add_exception_handler(RequestValidationError, _on_validation_error)
    app.add_exception_handler(StarletteHTTPException, _on_http_exception)
    for error_class in _DATABASE_ERRORS:
        app.add_exception_handler(error_class, _on_database_error)
    # Unexpected exceptions are answered by RequestContextMiddleware (core/middleware.py),
    # the outermost layer, so that the 500 still carries the request id.


def problem_responses(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """OpenAPI `responses` entries for the problem statuses an operation can return.

    The schema sits under `application/problem+json`, the one media type these answers
    have; a `model` would put it under the route's `application/json` instead, leaving
    generated clients with an untyped problem.
    """
    schema = {"$ref": _COMPONENT_REF.format(model=Problem.__name__)}
    return {
        status: {
            "description": _DESCRIPTIONS[status],
            "content": {PROBLEM_MEDIA_TYPE: {"schema": schema}},
        }
        for status in statuses
    }


def problem_schemas() -> dict[str, dict[str, Any]]:
    """`Problem` and the models it uses, for the spec's components (no route returns it
    as its model, so FastAPI does not publish it)."""
    _, schema = models_json_schema([(Problem, "serialization")], ref_template=_COMPONENT_REF)
    definitions: dict[str, dict[str, Any]] = schema["$defs"]
    return definitions


_DESCRIPTIONS = {
    400: "Malformed request",
    408: "The request body arrived too slowly",
    401: "Missing, unknown or revoked API key",
    403: "The API key lacks the required scope",
    404: "Not found in the caller's project",
    409: "Conflict with the current state",
    412: "The `If-Match` version is stale",
    413: "Request body too large",
    415: "Unsupported content type",
    422: "Invalid input; `errors` points at each invalid value",
    429: "Rate limit exceeded; see `Retry-After`",
    500: "A bug; the body names only the request id, to find it in the logs",
    503: "At capacity (overloaded), or the database unreachable or not migrated",
}
