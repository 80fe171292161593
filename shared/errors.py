"""The one error vocabulary. Domain code raises these; the HTTP layer renders them as
``application/problem+json`` (RFC 9457) with a field-by-field ``errors`` map."""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

PROBLEM_JSON = "application/problem+json"


class Problem(Exception):
    status = 500
    title = "Internal Server Error"

    def __init__(
        self,
        detail: str | None = None,
        *,
        errors: Mapping[str, Any] | None = None,
        headers: Mapping[str, str] | None = None,
    ) -> None:
        super().__init__(detail or self.title)
        self.detail = detail or self.title
        self.errors = dict(errors or {})
        self.headers = dict(headers or {})

    def to_dict(self, instance: str | None = None) -> dict[str, Any]:
        body: dict[str, Any] = {
            "type": "about:blank",
            "title": self.title,
            "status": self.status,
            "detail": self.detail,
        }
        if instance:
            body["instance"] = instance
        if self.errors:
            body["errors"] = self.errors
        return body


class BadRequest(Problem):
    """The request cannot be read at all (malformed JSON, wrong content type)."""

    status = 400
    title = "Bad Request"


class UnsupportedMediaType(Problem):
    """The body's Content-Type is none of those the endpoint reads."""

    status = 415
    title = "Unsupported Media Type"


class Unauthenticated(Problem):
    status = 401
    title = "Unauthorized"

    def __init__(self, detail: str | None = None, **kwargs: Any) -> None:
        kwargs.setdefault("headers", {"WWW-Authenticate": 'Bearer realm="clustergov"'})
        super().__init__(detail, **kwargs)


class Forbidden(Problem):
    status = 403
    title = "Forbidden"


class NotFound(Problem):
    status = 404
    title = "Not Found"


class MethodNotAllowed(Problem):
    status = 405
    title = "Method Not Allowed"


class Conflict(Problem):
    """Concurrent writers kept colliding; the client may retry."""

    status = 409
    title = "Conflict"


class Unprocessable(Problem):
    """The request was read but breaks a rule: a schema field, or a domain invariant."""

    status = 422
    title = "Unprocessable Content"


class ServiceUnavailable(Problem):
    status = 503
    title = "Service Unavailable"


class DomainError(Unprocessable):
    """A command breaks an invariant of the aggregate. ``field`` names the input at fault."""

    def __init__(self, message: str, field: str | None = None) -> None:
        super().__init__(message, errors={field: [message]} if field else None)
        self.field = field


class AggregateNotFound(NotFound):
    def __init__(self, stream_type: str, stream_id: str) -> None:
        super().__init__(f"{stream_type} {stream_id!r} does not exist")
        self.stream_type = stream_type
        self.stream_id = stream_id


class ConcurrencyError(Exception):
    """Another writer appended to the stream first (unique stream_id, version)."""

    def __init__(self, stream_id: str | None = None) -> None:
        super().__init__(f"stream {stream_id!r} changed concurrently")
        self.stream_id = stream_id
