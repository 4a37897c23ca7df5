"""Verify the notifications Tether sends to your backend (Standard Webhooks).

Each request carries ``webhook-id``, ``webhook-timestamp`` (Unix seconds) and
``webhook-signature``: space-separated ``v1,<base64 HMAC-SHA256>`` of
``"<id>.<timestamp>.<body>"`` under the endpoint's secret (``whsec_<base64 key>``). While a
rotated secret overlaps the new one, both sign; any ``v1`` signature that matches is
enough. A timestamp more than ``tolerance`` seconds away from now is refused, so a
captured request cannot be replayed later. Dedupe on ``webhook-id``: delivery is at least
once.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import json
import time
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

from pydantic import Field, ValidationError

from tether_client._errors import WebhookVerificationError
from tether_client._model import TetherModel

__all__ = ["WebhookEvent", "verify_webhook"]

DEFAULT_TOLERANCE = 300


class WebhookEvent(TetherModel):
    """A verified notification: its ``webhook-id`` and the body ``{type, timestamp, data}``."""

    id: str
    type: str
    timestamp: datetime
    data: dict[str, Any] = Field(default_factory=dict)


def _key(secret: str) -> bytes:
    raw = secret.removeprefix("whsec_")
    try:
        return base64.b64decode(raw, validate=True)
    except (binascii.Error, ValueError) as exc:
        raise WebhookVerificationError("the secret is not a whsec_<base64> secret") from exc


def _header(headers: Mapping[str, str], name: str) -> str:
    for key, value in headers.items():
        if key.lower() == name:
            return value
    raise WebhookVerificationError(f"the {name} header is missing")


def verify_webhook(
    headers: Mapping[str, str],
    body: bytes | str,
    secret: str,
    *,
    tolerance: int = DEFAULT_TOLERANCE,
    now: float | None = None,
) -> WebhookEvent:
    """Return the notification in ``body`` if a signature under ``secret`` matches.

    ``body`` must be the raw bytes received (re-encoded JSON would not match). Raises
    :class:`WebhookVerificationError` when a header is missing, the timestamp is further
    than ``tolerance`` seconds from ``now``, no ``v1`` signature matches, or the body is
    not a notification.
    """
    raw = body.encode() if isinstance(body, str) else bytes(body)
    msg_id = _header(headers, "webhook-id")
    stamp = _header(headers, "webhook-timestamp")
    signatures = _header(headers, "webhook-signature")
    try:
        sent_at = int(stamp)
    except ValueError as exc:
        raise WebhookVerificationError("webhook-timestamp is not a number") from exc
    current = time.time() if now is None else now
    if abs(current - sent_at) > tolerance:
        raise WebhookVerificationError("webhook-timestamp is too far from now")
    signed = f"{msg_id}.{stamp}.".encode() + raw
    expected = hmac.digest(_key(secret), signed, hashlib.sha256)
    matched = False
    for candidate in signatures.split():
        version, _, encoded = candidate.partition(",")
        if version != "v1":
            continue
        try:
            given = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError):
            continue
        matched |= hmac.compare_digest(given, expected)
    if not matched:
        raise WebhookVerificationError("no signature matches")
    try:
        payload = json.loads(raw)
    except ValueError as exc:
        raise WebhookVerificationError("the body is not JSON") from exc
    if not isinstance(payload, dict) or "type" not in payload:
        raise WebhookVerificationError("the body is not a notification")
    payload.setdefault("timestamp", datetime.fromtimestamp(sent_at, UTC).isoformat())
    try:
        return WebhookEvent.model_validate({**payload, "id": msg_id})
    except ValidationError as exc:
        raise WebhookVerificationError("the body is not a notification") from exc
