"""Errors keep their status and code across the wire."""

from __future__ import annotations

import pytest

from libs.common import errors


@pytest.mark.parametrize(
    ("cls", "status", "code"),
    [
        (errors.BadRequest, 400, "bad_request"),
        (errors.NotFound, 404, "not_found"),
        (errors.InvalidInput, 422, "invalid_input"),
        (errors.Unauthenticated, 401, "unauthenticated"),
        (errors.Forbidden, 403, "forbidden"),
        (errors.Conflict, 409, "conflict"),
        (errors.RateLimited, 429, "rate_limited"),
        (errors.Unavailable, 503, "unavailable"),
        (errors.Timeout, 504, "timeout"),
        (errors.Internal, 500, "internal"),
    ],
)
def test_errors_round_trip_wire_form(cls: type[errors.TetherError], status: int, code: str) -> None:
    exc = cls("something", details={"field": "x"})
    assert exc.status == status
    wire = exc.to_wire()
    assert wire == {"error": {"code": code, "message": "something", "details": {"field": "x"}}}
    back = errors.from_wire(status, wire)
    assert type(back) is cls
    assert (back.code, back.message, back.details) == (code, "something", {"field": "x"})


def test_errors_refined_code_survives() -> None:
    back = errors.from_wire(401, errors.Unauthenticated("late", code="token_expired").to_wire())
    assert isinstance(back, errors.Unauthenticated)
    assert back.code == "token_expired"


def test_errors_malformed_body_still_maps_status() -> None:
    assert isinstance(errors.from_wire(404, "garbage"), errors.NotFound)
    assert isinstance(errors.from_wire(418, None), errors.Internal)
