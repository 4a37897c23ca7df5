"""Turn an app's HTTP answer into a node's output or error: one mapping for every HTTP node.

Reading an answer (its body, headers, Retry-After) is ``libs/common/answers.py``, shared
with actions; this module adds what a node makes of it.

* 2xx and 3xx: the output ``{status, headers, body}`` — header names lower-cased (repeated
  headers joined with ``", "``), the body parsed as JSON when the answer says it is JSON,
  text otherwise (``null`` when empty).
* 429: a transient ``rate_limited`` error, ``retry_after`` from the Retry-After header
  (seconds or an HTTP date).
* 5xx: a transient ``http_error``; other 4xx: a permanent ``http_error``.

Errors carry ``data = {status, body}`` with the first KB of the body as text.
"""

from __future__ import annotations

from typing import Any

from libs.common.answers import Answer, body_of, decode, headers_of, retry_after, text
from services.flows.nodes.base import NodeError

__all__ = ["Answer", "body_of", "error_of", "headers_of", "output_of", "retry_after", "text"]

ERROR_BODY_BYTES = 1024


def output_of(answer: Answer) -> dict[str, Any]:
    """Return the node output for a successful answer."""
    return {"status": answer.status, "headers": headers_of(answer.headers), "body": body_of(answer)}


def error_of(answer: Answer, what: str) -> NodeError | None:
    """Return the NodeError an answer of ``what`` (``POST https://x/y``) means, or None."""
    status = answer.status
    if status < 400:
        return None
    content_type = answer.header("content-type") or ""
    data = {"status": status, "body": decode(answer.body[:ERROR_BODY_BYTES], content_type)}
    if status == 429:
        wait = retry_after(answer.header("retry-after"))
        after = f" (Retry-After {wait:g} s)" if wait is not None else ""
        return NodeError(
            "rate_limited",
            f"{what} answered 429 Too Many Requests{after}",
            data=data,
            transient=True,
            retry_after=wait,
        )
    return NodeError("http_error", f"{what} answered {status}", data=data, transient=status >= 500)
