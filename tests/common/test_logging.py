"""Secrets never reach a log line: redaction at any depth, through the real pipeline."""

from __future__ import annotations

import json
import re

import pytest
import structlog

from libs.common.config import LogSettings
from libs.common.logging import REDACTED, configure_logging, redact


def test_redact_replaces_secret_keys_at_any_depth() -> None:
    value = {
        "workspaceKey": "ws_1",
        "nested": {"refresh_token": "r1", "list": [{"clientSecret": "c1"}, {"ok": 1}]},
        "Authorization": "Bearer t",
        "accessToken": "a1",
        "api_key": "k",
        "password": "p",
        "code": "oauth-code",
        "integrationKey": "hubspot",
    }
    out = redact(value)
    assert out["workspaceKey"] == "ws_1"
    assert out["integrationKey"] == "hubspot"
    assert out["nested"]["refresh_token"] == REDACTED
    assert out["nested"]["list"][0]["clientSecret"] == REDACTED
    assert out["nested"]["list"][1] == {"ok": 1}
    for key in ("Authorization", "accessToken", "api_key", "password", "code"):
        assert out[key] == REDACTED, key


def test_logged_line_has_no_secret(capsys: pytest.CaptureFixture[str]) -> None:
    configure_logging("test", LogSettings(log_format="json"), cache=False)
    structlog.contextvars.bind_contextvars(request_id="r-1")
    structlog.get_logger().info(
        "token_refreshed",
        connection_id="c1",
        token="s3cr3t",
        payload={"deep": {"access_token": "s3cr3t"}},
    )
    line = capsys.readouterr().err.strip().splitlines()[-1]
    assert "s3cr3t" not in line
    record = json.loads(line)
    assert record["event"] == "token_refreshed"
    assert record["service"] == "test"
    assert record["request_id"] == "r-1"
    assert record["connection_id"] == "c1"
    assert record["token"] == REDACTED
    assert record["payload"]["deep"]["access_token"] == REDACTED
    # ISO 8601 in UTC with Z, microseconds unless they are zero (as datetime.isoformat)
    assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d(\.\d{6})?Z", record["timestamp"])
    structlog.contextvars.unbind_contextvars("request_id")
