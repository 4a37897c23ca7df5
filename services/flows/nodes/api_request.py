"""The ``api-request`` node: call the app's API as the run's connection, through its proxy.

The request goes over the bus to the connections service (``tether.connections.proxy.
request``), which adds the connection's credentials, renews them once on a 401, waits out
one short 429 and passes the app's answer back. Credentials never reach the flows service.
"""

from __future__ import annotations

import base64
import binascii
import json
from typing import Any, Literal

from pydantic import Field

from libs.common.contracts import connections as cc
from libs.common.contracts.base import AppPath, HeaderName
from services.flows.nodes.answers import Answer, error_of, output_of, text
from services.flows.nodes.base import NodeCall, NodeConfig, NodeError, NodeResult, NodeType
from services.flows.nodes.system_call import call_system, system_context

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Scalar = str | int | float | bool


class ApiRequestConfig(NodeConfig):
    """Call the app's API through the flow instance's connection."""

    path: AppPath
    method: Method = "GET"
    headers: dict[HeaderName, Scalar] = Field(default_factory=dict)
    query: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    body: Any = None


class ApiRequest(NodeType):
    """Send one request to the connection's app with the connection's credentials."""

    name = "api-request"
    config = ApiRequestConfig
    docs = (
        "Calls the app's API as the run's connection. Config: `path` (joined onto the "
        "integration's API base URL; it cannot leave it), `method` (GET, POST, PUT, PATCH or "
        "DELETE; default GET), `headers` and `query` (objects of names to values), and "
        "`body` (any JSON, sent as application/json); any value may be an expression. The "
        "connections service adds the connection's credentials (they never reach the flow), "
        "renews an OAuth token once when the app answers 401, and waits out one short "
        "Retry-After. Every request carries `Idempotency-Key: <runId>:<nodeKey>[:<item>]`, "
        "the same on every retry. Output: `{status, headers, body}` with header names in "
        "lower case and `body` parsed when the answer is JSON. Errors: `rate_limited` on 429 "
        "(retried after its Retry-After), `http_error` on 5xx (retried) and on other 4xx "
        "(not retried; `data` holds the status and the first KB of the body), `timeout`, "
        "`unavailable` and `refresh_failed` (retried), `connection_disconnected` and "
        "`not_found` when the connection cannot be used, `proxy_path` for a path outside "
        "the API."
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Send the request through the proxy and map the app's answer."""
        assert isinstance(config, ApiRequestConfig)
        headers = {k: text(v) for k, v in config.headers.items()}
        headers["Idempotency-Key"] = call.idempotency_key
        body: str | None = None
        if config.body is not None:
            raw = json.dumps(config.body, separators=(",", ":")).encode()
            body = base64.b64encode(raw).decode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        query = [
            (k, text(item))
            for k, v in config.query.items()
            for item in (v if isinstance(v, list) else [v])
        ]
        what = f"{config.method} {config.path}"
        request = cc.ProxyRequest(
            id=call.connection_id,
            method=config.method,
            path=config.path,
            query=query,
            headers=headers,
            body=body,
            ctx=system_context(call),
        )
        reply = await call_system(call, cc.PROXY_REQUEST, request, what)
        try:
            answer = Answer(reply.status, list(reply.headers), base64.b64decode(reply.body))
        except binascii.Error as exc:
            raise NodeError("invalid_reply", f"{what}: the proxy's body is not base64") from exc
        call.log(
            "api_request_answered", method=config.method, path=config.path, status=reply.status
        )
        error = error_of(answer, what)
        if error is not None:
            raise error
        return NodeResult(output=output_of(answer))
