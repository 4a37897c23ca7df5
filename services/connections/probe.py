"""Call an app's API with a connection's credentials: the test request and the proxy's hop."""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

import aiohttp
from yarl import URL

from libs.common.answers import Answer
from libs.common.contracts import connections as c
from libs.common.errors import InvalidInput
from services.connections.vault import inject


def target_url(api: c.ApiSpec, path: str) -> URL:
    """Join ``path`` onto the API base, refusing anything that would leave it."""
    base = URL(api.base_url)
    raw = path.lstrip("/")
    lowered = raw.lower()
    segments = lowered.replace("\\", "/").split("/")
    if (
        "://" in raw
        or raw.startswith(("/", "\\"))
        or any(s in ("..", ".", "%2e%2e", "%2e", ".%2e", "%2e.") for s in segments)
        or "%2f" in lowered
        or "%5c" in lowered
    ):
        raise InvalidInput(
            "the proxied path must stay inside the integration's API", code="proxy_path"
        )
    joined = URL(str(base).rstrip("/") + "/" + raw, encoded=True)
    if (joined.scheme, joined.host, joined.port) != (base.scheme, base.host, base.port) or not (
        joined.path.startswith(base.path.rstrip("/") + "/") or joined.path == base.path
    ):
        raise InvalidInput(
            "the proxied path must stay inside the integration's API", code="proxy_path"
        )
    return joined


async def call_api(
    http: aiohttp.ClientSession,
    api: c.ApiSpec,
    values: dict[str, Any],
    *,
    method: str,
    path: str,
    query: list[tuple[str, str]] | None = None,
    headers: dict[str, str] | None = None,
    body: bytes | None = None,
    timeout: float = 20.0,
) -> Answer:
    """Send one request as the connection; never follow redirects (they may leave the app)."""
    url = target_url(api, path)
    auth_headers, auth_query = inject(api, values)
    params = [*(query or []), *auth_query.items()]
    try:
        async with http.request(
            method,
            url,
            params=params or None,
            headers={**(headers or {}), **auth_headers},
            data=body,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            return Answer(resp.status, list(resp.headers.items()), await resp.read())
    except ValueError as exc:  # aiohttp will not write a control character into a header
        raise InvalidInput(
            "the request cannot be sent: a credential or header value holds a control character",
            code="unsendable_request",
        ) from exc


@dataclass(frozen=True)
class TestOutcome:
    """What the integration's test request said."""

    __test__ = False

    ok: bool
    status: int | None
    error: str | None
    account: dict[str, Any] | None


def _field(data: Any, dotted: str | None) -> Any:
    if not dotted:
        return None
    for part in dotted.split("."):
        if not isinstance(data, dict):
            return None
        data = data.get(part)
    return data


async def run_test(
    http: aiohttp.ClientSession,
    integration_api: c.ApiSpec | None,
    test: c.TestRequestSpec | None,
    values: dict[str, Any],
    *,
    timeout: float = 20.0,
) -> TestOutcome:
    """Run the integration's test request; no test configured counts as a pass."""
    if integration_api is None or test is None:
        return TestOutcome(True, None, None, None)
    try:
        answer = await call_api(
            http, integration_api, values, method=test.method, path=test.path, timeout=timeout
        )
    except (TimeoutError, aiohttp.ClientError) as exc:
        return TestOutcome(False, None, f"test request failed: {type(exc).__name__}", None)
    if answer.status >= 400:
        return TestOutcome(False, answer.status, f"test request answered {answer.status}", None)
    try:
        data = json.loads(answer.body) if answer.body else {}
    except ValueError:
        data = {}
    account_id, account_name = (
        _field(data, test.account_id_field),
        _field(data, test.account_name_field),
    )
    account = {"id": str(account_id) if account_id is not None else None, "name": account_name}
    return TestOutcome(True, answer.status, None, account if account_id or account_name else None)
