"""Send one signed attempt to an endpoint and say what came of it (no database here).

Every attempt goes through a :func:`~libs.common.ssrf.guarded_session` (addresses the
policy refuses are never connected to, whatever the name resolves to at that moment),
never follows a redirect (a 3xx is an answer, and a failed one), and is bounded by the
delivery timeout as a whole. Only the first 1 KB of an answer's body is read.
"""

from __future__ import annotations

import asyncio
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime

import aiohttp

from libs.common.errors import InvalidInput
from libs.common.ssrf import UrlPolicy, check_url
from services.notifications import signing
from services.notifications.store.deliveries import AttemptRecord

RESPONSE_BYTES = 1024
USER_AGENT = "Tether-Webhooks/1"


@dataclass(frozen=True)
class Sent:
    """One attempt's record, and the answer's ``Retry-After`` (seconds) when it gave one."""

    attempt: AttemptRecord
    retry_after: float | None

    @property
    def ok(self) -> bool:
        """Tell whether the receiver accepted the delivery (any 2xx)."""
        code = self.attempt.status_code
        return code is not None and 200 <= code < 300


def retry_after_seconds(value: str | None, now: datetime) -> float | None:
    """Return a ``Retry-After`` header's delay in seconds (delta or HTTP date), or None."""
    if not value:
        return None
    value = value.strip()
    if value.isdigit():
        return float(value)
    try:
        when = parsedate_to_datetime(value)
    except (TypeError, ValueError):
        return None
    if when.tzinfo is None:
        when = when.replace(tzinfo=UTC)
    return max(0.0, (when - now).total_seconds())


class Sender:
    """Post signed deliveries through one guarded client session."""

    def __init__(self, http: aiohttp.ClientSession, policy: UrlPolicy, timeout: float) -> None:
        self._http = http
        self._policy = policy
        self._timeout = timeout

    async def send(self, url: str, msg_id: str, body: str, secrets: Sequence[str]) -> Sent:
        """Make one attempt; never raises for what the network or the receiver did."""
        attempted_at = datetime.now(UTC)
        started = time.perf_counter()
        data = body.encode()
        headers = {
            "content-type": "application/json",
            "user-agent": USER_AGENT,
            **signing.headers(secrets, msg_id, int(attempted_at.timestamp()), data),
        }
        status: int | None = None
        response: str | None = None
        error: str | None = None
        retry_after: float | None = None
        try:
            check_url(url, self._policy)
            async with asyncio.timeout(self._timeout):
                async with self._http.post(
                    url, data=data, headers=headers, allow_redirects=False
                ) as resp:
                    status = resp.status
                    head = await resp.content.read(RESPONSE_BYTES)
                    # PostgreSQL text holds no NUL: an answer's bytes are kept readable.
                    response = head.decode("utf-8", errors="replace").replace("\x00", "\ufffd")
                    if status == 429:
                        retry_after = retry_after_seconds(
                            resp.headers.get("Retry-After"), datetime.now(UTC)
                        )
            if not 200 <= status < 300:
                error = f"the endpoint answered {status}"
        except TimeoutError:
            error = f"timed out after {self._timeout:g} s"
        except InvalidInput as exc:
            error = f"refused: {exc.message}"
        except (aiohttp.ClientError, OSError) as exc:
            error = f"{type(exc).__name__}: {exc}"[:500]
        duration_ms = int((time.perf_counter() - started) * 1000)
        return Sent(
            AttemptRecord(
                attempted_at=attempted_at,
                status_code=status,
                duration_ms=duration_ms,
                response=response,
                error=error,
            ),
            retry_after,
        )
