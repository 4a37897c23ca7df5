"""The ``http-request`` node: call any URL, guarded against server-side request forgery."""

from __future__ import annotations

import json
from typing import Any, Literal

import aiohttp
from pydantic import Field, field_validator
from yarl import URL

from libs.common.contracts.base import HeaderName
from libs.common.errors import InvalidInput
from libs.common.ssrf import BlockedAddressError, UrlPolicy, check_url
from services.flows.nodes.answers import Answer, error_of, output_of, text
from services.flows.nodes.base import NodeCall, NodeConfig, NodeError, NodeResult, NodeType

Method = Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
Scalar = str | int | float | bool
MAX_REDIRECTS = 5
REDIRECTS = frozenset({301, 302, 303, 307, 308})


class HttpRequestConfig(NodeConfig):
    """Call any http(s) URL."""

    url: str = Field(pattern=r"^https?://", max_length=8192)
    method: Method = "GET"
    headers: dict[HeaderName, Scalar] = Field(default_factory=dict)
    query: dict[str, Scalar | list[Scalar]] = Field(default_factory=dict)
    body: Any = None

    @field_validator("url")
    @classmethod
    def _not_metadata(cls, url: str) -> str:
        # Private addresses depend on the operator setting (checked when the node runs);
        # a malformed URL or a cloud metadata address is refused whatever the setting.
        try:
            check_url(url, UrlPolicy(allow_private=True))
        except InvalidInput as exc:
            raise ValueError(exc.details[0]["message"]) from exc
        return url


def _refused(message: str) -> NodeError:
    return NodeError("url_refused", message)


def _blocked(exc: BaseException) -> BlockedAddressError | None:
    """Return the SSRF refusal behind an aiohttp connection error, if that is what it was."""
    seen: BaseException | None = exc
    while seen is not None:
        if isinstance(seen, BlockedAddressError):
            return seen
        if isinstance(seen, aiohttp.ClientConnectorError) and isinstance(
            seen.os_error, BlockedAddressError
        ):
            return seen.os_error
        seen = seen.__cause__
    return None


async def _read(resp: aiohttp.ClientResponse, limit: int, what: str) -> bytes:
    if resp.content_length is not None and resp.content_length > limit:
        raise NodeError("response_too_large", f"{what} answered more than {limit} bytes")
    chunks: list[bytes] = []
    size = 0
    async for chunk in resp.content.iter_chunked(64 * 1024):
        size += len(chunk)
        if size > limit:
            raise NodeError("response_too_large", f"{what} answered more than {limit} bytes")
        chunks.append(chunk)
    return b"".join(chunks)


class HttpRequest(NodeType):
    """Send one HTTP request to a URL the flow names."""

    name = "http-request"
    config = HttpRequestConfig
    docs = (
        "Sends one HTTP request to any http(s) URL and passes the answer on. Config: `url`, "
        "`method` (GET, POST, PUT, PATCH or DELETE; default GET), `headers` and `query` "
        "(objects of names to values), and `body` (any JSON, sent as application/json). Any "
        'value may be an expression: `{"$expr": "input.id"}` or text with '
        "`{{ input.id }}`. Every request carries `Idempotency-Key: <runId>:<nodeKey>[:<item>]`, "
        "the same on every retry, so the app can ignore a repeat. Redirects are followed (at "
        "most 5). Loopback, private, link-local and cloud metadata addresses are refused "
        "unless the operator allows private addresses (metadata addresses never). Output: "
        "`{status, headers, body}` with header names in lower case and `body` parsed when "
        "the answer is JSON, text otherwise. Errors: `timeout` and `unreachable` (retried), "
        "`rate_limited` on 429 (retried after its Retry-After), `http_error` on 5xx "
        "(retried) and on other 4xx (not retried; `data` holds the status and the first KB "
        "of the body), `url_refused`, `too_many_redirects`, `response_too_large`."
    )

    async def run(self, config: NodeConfig, call: NodeCall) -> NodeResult:
        """Send the request, follow redirects (each target checked), map the answer."""
        assert isinstance(config, HttpRequestConfig)
        services = call.services
        method: str = config.method
        url = URL(config.url)
        if config.query:
            url = url.extend_query(
                [
                    (k, text(item))
                    for k, v in config.query.items()
                    for item in (v if isinstance(v, list) else [v])
                ]
            )
        headers = {k: text(v) for k, v in config.headers.items()}
        headers["Idempotency-Key"] = call.idempotency_key
        body: bytes | None = None
        if config.body is not None:
            body = json.dumps(config.body, separators=(",", ":")).encode()
            if not any(k.lower() == "content-type" for k in headers):
                headers["Content-Type"] = "application/json"
        for _ in range(MAX_REDIRECTS + 1):
            what = f"{method} {url.with_query(None).with_fragment(None)}"
            try:
                check_url(str(url), services.url_policy)
            except InvalidInput as exc:
                raise _refused(f"{what}: {exc.details[0]['message']}") from exc
            answer, location = await self._send(call, method, url, headers, body, what)
            if location is None:
                call.log("http_request_answered", method=method, url=what, status=answer.status)
                error = error_of(answer, what)
                if error is not None:
                    raise error
                return NodeResult(output=output_of(answer))
            call.log("http_request_redirected", status=answer.status, url=what)
            if answer.status == 303 or (answer.status in (301, 302) and method == "POST"):
                method, body = "GET", None
                headers = {k: v for k, v in headers.items() if k.lower() != "content-type"}
            url = location
        raise NodeError("too_many_redirects", f"more than {MAX_REDIRECTS} redirects from {url}")

    async def _send(
        self,
        call: NodeCall,
        method: str,
        url: URL,
        headers: dict[str, str],
        body: bytes | None,
        what: str,
    ) -> tuple[Answer, URL | None]:
        services = call.services
        try:
            async with services.http.request(
                method,
                url,
                headers=headers,
                data=body,
                allow_redirects=False,
                timeout=aiohttp.ClientTimeout(total=services.request_timeout),
            ) as resp:
                location = resp.headers.get("Location")
                if resp.status in REDIRECTS and location:
                    return Answer(resp.status, [], b""), resp.url.join(URL(location))
                data = await _read(resp, services.response_limit, what)
                return Answer(resp.status, list(resp.headers.items()), data), None
        except TimeoutError as exc:
            raise NodeError(
                "timeout",
                f"{what} did not answer within {services.request_timeout:g} s",
                transient=True,
            ) from exc
        except aiohttp.ClientError as exc:
            if blocked := _blocked(exc):
                raise _refused(f"{what}: {blocked}") from exc
            raise NodeError(
                "unreachable", f"{what} could not be reached: {type(exc).__name__}", transient=True
            ) from exc
        except ValueError as exc:  # aiohttp will not write a control character into a header
            raise NodeError(
                "invalid_request", f"{what} cannot be sent: a header holds a control character"
            ) from exc
