"""Read an app's HTTP answer: one way for everything that calls apps (flow nodes, actions).

* :class:`Answer` — status, headers (as sent, repeated ones kept) and the body, buffered.
* :func:`body_of` — the body parsed as JSON when the answer says it is JSON (``+json``
  too), text otherwise (in the answer's charset), ``None`` when empty.
* :func:`headers_of` — headers as one object: names lower-cased, repeats joined ``", "``.
* :func:`retry_after` — the seconds a ``Retry-After`` value asks for (delta or HTTP date).
* :func:`app_message` — the app's own words about a failure, short enough for an error.
* :func:`app_failure` — the one error a failed answer means: 4xx → 422 ``app_rejected``,
  5xx → 502 ``app_unavailable``, each with the app's status and message (and
  ``retryAfter`` on a 429 that says how long).
* :func:`text` — a header or query value as text (``true``, ``3``).

Pure functions: no I/O.
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Any

from libs.common.errors import BadGateway, InvalidInput, TetherError

MESSAGE_FIELDS = ("message", "error_description", "error", "detail", "title")
"""Where apps put the words of a failure, in the order they are looked for."""


@dataclass(frozen=True)
class Answer:
    """An app's answer, buffered."""

    status: int
    headers: list[tuple[str, str]]
    body: bytes

    def header(self, name: str) -> str | None:
        """Return the first value of header ``name`` (any case), or None."""
        lowered = name.lower()
        return next((v for k, v in self.headers if k.lower() == lowered), None)


def text(value: Any) -> str:
    """Return a header or query value as text (``true`` for True, ``3`` for 3)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def headers_of(pairs: Iterable[tuple[str, str]]) -> dict[str, str]:
    """Return headers as one dict: names lower-cased, repeated values joined with ", "."""
    found: dict[str, str] = {}
    for name, value in pairs:
        key = name.lower()
        found[key] = f"{found[key]}, {value}" if key in found else value
    return found


def _charset(content_type: str) -> str:
    for part in content_type.split(";")[1:]:
        name, _, value = part.strip().partition("=")
        if name.lower() == "charset" and value:
            return value.strip('"')
    return "utf-8"


def decode(body: bytes, content_type: str) -> str:
    """Return ``body`` as text in the charset ``content_type`` names (UTF-8 otherwise)."""
    try:
        return body.decode(_charset(content_type), errors="replace")
    except LookupError:  # a charset Python does not know
        return body.decode("utf-8", errors="replace")


def body_of(answer: Answer) -> Any:
    """Return the answer's body: parsed JSON when it says JSON, else text; None when empty."""
    if not answer.body:
        return None
    content_type = answer.header("content-type") or ""
    media = content_type.split(";")[0].strip().lower()
    decoded = decode(answer.body, content_type)
    if media == "application/json" or media.endswith("+json"):
        try:
            return json.loads(decoded)
        except ValueError:
            return decoded
    return decoded


def retry_after(value: str | None) -> float | None:
    """Return the seconds a Retry-After value asks for (delta or HTTP date), if it says."""
    if value is None:
        return None
    try:
        return max(0.0, float(value))
    except ValueError:
        pass
    try:
        return max(0.0, (parsedate_to_datetime(value) - datetime.now(UTC)).total_seconds())
    except (TypeError, ValueError):
        return None


def app_message(answer: Answer, limit: int = 300) -> str:
    """Return the app's own words about a failed answer (a message field, else the text)."""
    body = body_of(answer)
    if isinstance(body, dict):
        for field in MESSAGE_FIELDS:
            value = body.get(field)
            if isinstance(value, str) and value.strip():
                return value.strip()[:limit]
            if isinstance(value, dict) and isinstance(value.get("message"), str):
                return str(value["message"]).strip()[:limit]
    if isinstance(body, str):
        return " ".join(body.split())[:limit]
    return ""


def app_failure(answer: Answer, what: str) -> TetherError:
    """Return the error a failed answer (status 400 or more) to ``what`` means.

    ``what`` names the request (``POST /contacts``). 5xx: BadGateway (502,
    ``app_unavailable``); 4xx: InvalidInput (422, ``app_rejected``). Details carry the
    app's ``status`` and ``message``, and on a 429 ``retryAfter`` (seconds) when the app
    said how long to wait.
    """
    status = answer.status
    message = app_message(answer)
    details: dict[str, Any] = {"status": status, "message": message}
    said = f": {message}" if message else ""
    if status >= 500:
        return BadGateway(
            f"{what}: the app failed ({status}){said}", code="app_unavailable", details=details
        )
    wait = retry_after(answer.header("retry-after")) if status == 429 else None
    if wait is not None:
        details["retryAfter"] = wait
    return InvalidInput(
        f"{what}: the app refused ({status}){said}", code="app_rejected", details=details
    )
