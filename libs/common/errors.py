"""Draw Tether's one error hierarchy; every layer raises and maps only these.

::

    TetherError (code, message, details, status)
    ├── BadRequest        400  bad_request        not a request we can read (malformed JSON or form)
    ├── InvalidInput      422  invalid_input      readable, but a body, query or path field is wrong
    ├── Unauthenticated   401  unauthenticated    no or bad credentials (token_* codes refine it)
    ├── Forbidden         403  forbidden          authenticated but not allowed
    ├── NotFound          404  not_found          absent, or not visible to this caller
    ├── MethodNotAllowed  405  method_not_allowed the route exists, the method does not
    ├── Conflict          409  conflict           state or revision clash, duplicate key
    ├── Gone              410  gone               it existed, it is retired for good
    ├── PayloadTooLarge   413  payload_too_large  body over the configured limit
    ├── UnsupportedMedia  415  unsupported_media_type  a body that is not JSON
    ├── RateLimited       429  rate_limited       slow down (details may carry retryAfter)
    ├── Internal          500  internal           a bug; the message is opaque on the wire
    ├── BadGateway        502  bad_gateway        an external app failed (5xx, unreachable)
    ├── Unavailable       503  unavailable        a dependency does not answer (no responders)
    └── Timeout           504  timeout            a dependency answered too late

A subclass fixes the HTTP status; an instance may refine ``code`` (for example
``Unauthenticated("token_expired", ...)``) so clients can branch on it while the status
stays stable. Domain code raises these; only the gateway turns them into HTTP, and the
bus carries them between services in the same wire form::

    {"error": {"code": "...", "message": "...", "details": ...}}
"""

from __future__ import annotations

from typing import Any, ClassVar


class TetherError(Exception):
    """Base of every error Tether raises on purpose."""

    status: ClassVar[int] = 500
    default_code: ClassVar[str] = "internal"

    def __init__(self, message: str, *, code: str | None = None, details: Any = None) -> None:
        super().__init__(message)
        self.message = message
        self.code = code or self.default_code
        self.details = details

    def to_wire(self) -> dict[str, Any]:
        """Return the JSON-ready wire form of this error."""
        body: dict[str, Any] = {"code": self.code, "message": self.message}
        if self.details is not None:
            body["details"] = self.details
        return {"error": body}

    def __repr__(self) -> str:
        return f"{type(self).__name__}(code={self.code!r}, message={self.message!r})"


class BadRequest(TetherError):
    """The caller sent something we cannot even read (malformed JSON, a broken form)."""

    status = 400
    default_code = "bad_request"


class InvalidInput(TetherError):
    """The caller sent something we cannot accept."""

    status = 422
    default_code = "invalid_input"


class Unauthenticated(TetherError):
    """The caller did not prove who it is."""

    status = 401
    default_code = "unauthenticated"


class Forbidden(TetherError):
    """The caller is known but may not do this."""

    status = 403
    default_code = "forbidden"


class NotFound(TetherError):
    """The thing does not exist, or the caller may not know it exists."""

    status = 404
    default_code = "not_found"


class MethodNotAllowed(TetherError):
    """The route exists but does not take this method."""

    status = 405
    default_code = "method_not_allowed"


class Conflict(TetherError):
    """The request clashes with the current state."""

    status = 409
    default_code = "conflict"


class Gone(TetherError):
    """The thing existed and is retired for good."""

    status = 410
    default_code = "gone"


class PayloadTooLarge(TetherError):
    """The request body is over the limit."""

    status = 413
    default_code = "payload_too_large"


class UnsupportedMedia(TetherError):
    """The body is not in a format the route takes."""

    status = 415
    default_code = "unsupported_media_type"


class RateLimited(TetherError):
    """The caller, or an upstream app, asks us to slow down."""

    status = 429
    default_code = "rate_limited"


class Internal(TetherError):
    """Something went wrong that is our fault."""

    status = 500
    default_code = "internal"


class BadGateway(TetherError):
    """An external app we called for the caller failed (answered 5xx, or could not be reached)."""

    status = 502
    default_code = "bad_gateway"


class Unavailable(TetherError):
    """A dependency is not there to answer."""

    status = 503
    default_code = "unavailable"


class Timeout(TetherError):
    """A dependency did not answer in time."""

    status = 504
    default_code = "timeout"


_BY_STATUS: dict[int, type[TetherError]] = {
    cls.status: cls
    for cls in (
        BadRequest,
        InvalidInput,
        Unauthenticated,
        Forbidden,
        NotFound,
        MethodNotAllowed,
        Conflict,
        Gone,
        PayloadTooLarge,
        UnsupportedMedia,
        RateLimited,
        Internal,
        BadGateway,
        Unavailable,
        Timeout,
    )
}


def error_class_for_status(status: int) -> type[TetherError]:
    """Return the error class that carries ``status`` (Internal for a status we do not use)."""
    return _BY_STATUS.get(status, Internal)


def from_wire(status: int, body: Any) -> TetherError:
    """Rebuild a domain error from its status and wire body (tolerating a malformed body)."""
    cls = error_class_for_status(status)
    payload = body.get("error") if isinstance(body, dict) else None
    if not isinstance(payload, dict):
        return cls("the service returned an error without a body")
    message = str(payload.get("message") or cls.default_code)
    code = payload.get("code")
    return cls(message, code=str(code) if code else None, details=payload.get("details"))


def invalid_from_validation(exc: Any, *, message: str = "the input is not valid") -> InvalidInput:
    """Turn a pydantic ``ValidationError`` into InvalidInput naming each failing field.

    Input values are left out on purpose: they may be secrets.
    """
    details = [
        {
            "field": ".".join(str(part) for part in err["loc"]) or "(body)",
            "message": err["msg"],
            "type": err["type"],
        }
        for err in exc.errors(include_url=False, include_input=False, include_context=False)
    ]
    fields = ", ".join(d["field"] for d in details[:5])
    return InvalidInput(f"{message}: {fields}" if fields else message, details=details)
