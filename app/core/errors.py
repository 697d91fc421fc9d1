"""The domain error tree. Every error a client can see is one of these classes.

Each class carries the HTTP status and a stable problem `type`; `app.core.problems`
turns them into RFC 9457 responses in one place. Nothing below a router raises
`HTTPException`.
"""

from dataclasses import dataclass
from typing import ClassVar

PROBLEM_TYPE_PREFIX = "urn:cdp:problem:"


@dataclass(frozen=True)
class FieldError:
    """One invalid input: `pointer` is an RFC 6901 JSON pointer inside `location`."""

    pointer: str
    message: str
    location: str = "body"


class DomainError(Exception):
    """Base of every error the API reports to clients."""

    status_code: ClassVar[int] = 400
    slug: ClassVar[str] = "bad-request"
    title: ClassVar[str] = "Bad request"

    def __init__(
        self,
        detail: str,
        *,
        errors: list[FieldError] | None = None,
        headers: dict[str, str] | None = None,
    ) -> None:
        super().__init__(detail)
        self.detail = detail
        self.errors = errors or []
        self.headers = headers or {}

    @classmethod
    def type_uri(cls) -> str:
        return PROBLEM_TYPE_PREFIX + cls.slug


class InvalidInput(DomainError):
    """Raised when a request is well-formed JSON but its values break a rule."""

    status_code = 422
    slug = "validation-error"
    title = "Invalid input"


class MalformedRequest(DomainError):
    """Raised when a request body is not parseable (broken JSON, bad cursor)."""

    status_code = 400
    slug = "malformed-request"
    title = "Malformed request"


class Unauthenticated(DomainError):
    """Raised when the API key is missing, unknown, revoked or malformed."""

    status_code = 401
    slug = "unauthenticated"
    title = "Authentication required"

    def __init__(self, detail: str) -> None:
        super().__init__(detail, headers={"WWW-Authenticate": 'Bearer realm="cdp"'})


class Forbidden(DomainError):
    """Raised when the key is valid but lacks the scope the operation needs."""

    status_code = 403
    slug = "forbidden"
    title = "Forbidden"


class NotFound(DomainError):
    """Raised when a resource does not exist in the caller's project."""

    status_code = 404
    slug = "not-found"
    title = "Not found"


class MethodNotAllowed(DomainError):
    """Raised when the path exists but not with this HTTP method."""

    status_code = 405
    slug = "method-not-allowed"
    title = "Method not allowed"


class Conflict(DomainError):
    """Raised when the request clashes with the current state (a taken name or identifier)."""

    status_code = 409
    slug = "conflict"
    title = "Conflict"


class IdentifierTaken(Conflict):
    """Raised when an identifier value already belongs to another customer of the project."""

    slug = "identifier-taken"
    title = "Identifier taken"


class PreconditionFailed(DomainError):
    """Raised when `If-Match` names a version that is no longer current."""

    status_code = 412
    slug = "precondition-failed"
    title = "Precondition failed"


class PayloadTooLarge(DomainError):
    """Raised when a request body exceeds the configured limit."""

    status_code = 413
    slug = "payload-too-large"
    title = "Payload too large"


class RequestTimeout(DomainError):
    """Raised when a client sends its request body too slowly (a slow-body attack ties up
    a worker's connection and memory for as long as the client likes)."""

    status_code = 408
    slug = "request-timeout"
    title = "Request timeout"


class UnsupportedMediaType(DomainError):
    """Raised when a body is sent with a content type the endpoint does not read."""

    status_code = 415
    slug = "unsupported-media-type"
    title = "Unsupported media type"


class RetryLater(DomainError):
    """A refusal that says when to try again (Retry-After, in seconds)."""

    def __init__(self, detail: str, *, retry_after_seconds: int) -> None:
        super().__init__(detail, headers={"Retry-After": str(retry_after_seconds)})


class RateLimited(RetryLater):
    """Raised when an API key sends more requests than its rate allows."""

    status_code = 429
    slug = "rate-limited"
    title = "Too many requests"


class ServiceUnavailable(DomainError):
    """Raised when a dependency (the database) cannot be reached or is not migrated."""

    status_code = 503
    slug = "service-unavailable"
    title = "Service unavailable"


class Overloaded(RetryLater):
    """Raised when a process has as many requests in flight as it admits: answered before
    any work, so a retry after Retry-After is always safe."""

    status_code = 503
    slug = "overloaded"
    title = "Service overloaded"
