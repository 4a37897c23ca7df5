"""The errors a Tether client raises, drawn in one place.

::

    TetherClientError                  anything this package raises
    ├── TransportError                 no HTTP answer: connection refused, reset, timed out
    ├── WebhookVerificationError       a notification whose signature or time is not right
    └── TetherError                    the API answered an error (status, code, message,
        │                              details, request_id from the error envelope)
        ├── BadRequestError            400: a body that cannot be read
        ├── AuthenticationError        401: no token, or one the workspace refuses
        ├── PermissionDeniedError      403: the token may not do this
        ├── NotFoundError              404
        ├── ConflictError              409: a stale revision, a reused key, a state conflict
        ├── ValidationError            422: ``details`` names each wrong field
        ├── RateLimitError             429: ``retry_after`` seconds when the API said so
        └── ServerError                5xx (503: ``retry_after`` too)

The API answers every error as ``{"error": {"code", "message", "details", "requestId"}}``;
``request_id`` is also the trace id, the one to quote when asking what happened.
"""

from __future__ import annotations

from typing import Any

import httpx

__all__ = [
    "AuthenticationError",
    "BadRequestError",
    "ConflictError",
    "NotFoundError",
    "PermissionDeniedError",
    "RateLimitError",
    "ServerError",
    "TetherClientError",
    "TetherError",
    "TransportError",
    "ValidationError",
    "WebhookVerificationError",
    "error_from_response",
]


class TetherClientError(Exception):
    """Base of every error this package raises."""


class TransportError(TetherClientError):
    """No HTTP answer came back (the ``httpx`` error is the ``__cause__``)."""


class WebhookVerificationError(TetherClientError):
    """A notification's signature, timestamp or headers are not right: do not trust it."""


class TetherError(TetherClientError):
    """The API answered an error; its envelope is kept field by field."""

    def __init__(
        self,
        status: int,
        code: str,
        message: str,
        details: Any = None,
        request_id: str | None = None,
        headers: httpx.Headers | None = None,
    ) -> None:
        super().__init__(f"{status} {code}: {message}")
        self.status = status
        self.code = code
        self.message = message
        self.details = details
        self.request_id = request_id
        self.headers = headers if headers is not None else httpx.Headers()

    def __repr__(self) -> str:
        """Show status, code and request id (never the request's token)."""
        return (
            f"{type(self).__name__}(status={self.status}, code={self.code!r}, "
            f"message={self.message!r}, request_id={self.request_id!r})"
        )


class BadRequestError(TetherError):
    """400: the request's body or query could not be read."""


class AuthenticationError(TetherError):
    """401: no token, or a token the workspace does not accept (``code`` says why)."""


class PermissionDeniedError(TetherError):
    """403: the token's principal may not call this route or see this object."""


class NotFoundError(TetherError):
    """404: no such object in this workspace (or not one this customer may see)."""


class ConflictError(TetherError):
    """409: a stale revision, a reused idempotency key, or an object in the wrong state."""


class ValidationError(TetherError):
    """422: readable input with wrong fields; ``details`` names each one."""


class _RetryAfter(TetherError):
    @property
    def retry_after(self) -> float | None:
        """Return the seconds the API asked to wait (``Retry-After``), if it said."""
        return retry_after_seconds(self.headers)


class RateLimitError(_RetryAfter):
    """429: too many requests or a full queue; wait ``retry_after`` seconds."""


class ServerError(_RetryAfter):
    """5xx: the API failed or a service was unavailable; safe to retry idempotent calls."""


_BY_STATUS: dict[int, type[TetherError]] = {
    400: BadRequestError,
    401: AuthenticationError,
    403: PermissionDeniedError,
    404: NotFoundError,
    409: ConflictError,
    422: ValidationError,
    429: RateLimitError,
}


def retry_after_seconds(headers: httpx.Headers) -> float | None:
    """Return ``Retry-After`` in seconds when it is a number of seconds, else None."""
    value = headers.get("retry-after")
    if value is None:
        return None
    try:
        seconds = float(value)
    except ValueError:
        return None
    return max(seconds, 0.0)


def error_from_response(response: httpx.Response) -> TetherError:
    """Return the error an error answer stands for, from its envelope when it has one."""
    status = response.status_code
    cls = _BY_STATUS.get(status, ServerError if status >= 500 else TetherError)
    code, message, details = f"http_{status}", response.reason_phrase or "error", None
    request_id = response.headers.get("x-request-id")
    try:
        envelope = response.json()
    except ValueError:
        envelope = None
    error = envelope.get("error") if isinstance(envelope, dict) else None
    if isinstance(error, dict):
        code = str(error.get("code", code))
        message = str(error.get("message", message))
        details = error.get("details")
        request_id = error.get("requestId") or request_id
    return cls(status, code, message, details, request_id, response.headers)
