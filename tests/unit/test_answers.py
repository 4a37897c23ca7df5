"""One rule maps an app's failed answer to our errors (actions and records alike)."""

from __future__ import annotations

import json

from libs.common.answers import Answer, app_failure
from libs.common.errors import BadGateway, InvalidInput


def answer(status: int, body: object = None, **headers: str) -> Answer:
    """Return a JSON answer with these headers."""
    pairs = [("Content-Type", "application/json"), *headers.items()]
    return Answer(status, pairs, json.dumps(body).encode() if body is not None else b"")


def test_app_failure_4xx_is_app_rejected_with_the_apps_words() -> None:
    error = app_failure(answer(404, {"message": "no such contact"}), "GET /contacts/1")
    assert isinstance(error, InvalidInput)
    assert error.code == "app_rejected"
    assert error.message == "GET /contacts/1: the app refused (404): no such contact"
    assert error.details == {"status": 404, "message": "no such contact"}


def test_app_failure_5xx_is_app_unavailable() -> None:
    error = app_failure(answer(503), "POST /contacts")
    assert isinstance(error, BadGateway)
    assert error.code == "app_unavailable"
    assert error.message == "POST /contacts: the app failed (503)"
    assert error.details == {"status": 503, "message": ""}


def test_app_failure_429_carries_retry_after_only_when_said() -> None:
    said = app_failure(answer(429, {"error": "slow down"}, **{"Retry-After": "120"}), "GET /a")
    assert said.details == {"status": 429, "message": "slow down", "retryAfter": 120.0}
    unsaid = app_failure(answer(429), "GET /a")
    assert unsaid.details == {"status": 429, "message": ""}
