"""Talk to providers' token endpoints: code exchange, refresh, client credentials."""

from __future__ import annotations

import base64
import hashlib
import json
import secrets
from dataclasses import dataclass
from typing import Literal
from urllib.parse import parse_qsl, quote, urlencode

import aiohttp

from libs.common.contracts import connections as c

FailureKind = Literal["invalid_grant", "rejected", "transient"]


class ProviderError(Exception):
    """A token endpoint said no (or did not answer); the message carries no secret."""

    def __init__(self, kind: FailureKind, message: str, status: int | None = None) -> None:
        super().__init__(message)
        self.kind = kind
        self.message = message[:300]
        self.status = status


@dataclass(frozen=True)
class TokenAnswer:
    """What a token endpoint granted."""

    access_token: str
    refresh_token: str | None
    token_type: str
    scope: str | None
    expires_in: int | None


def pkce_pair() -> tuple[str, str]:
    """Return a PKCE (verifier, S256 challenge)."""
    verifier = secrets.token_urlsafe(48)
    digest = hashlib.sha256(verifier.encode()).digest()
    return verifier, base64.urlsafe_b64encode(digest).rstrip(b"=").decode()


def authorize_url(
    auth: c.OAuth2Auth, client_id: str, redirect_uri: str, state: str, challenge: str | None
) -> str:
    """Return the provider URL the browser goes to."""
    params = {
        "response_type": "code",
        "client_id": client_id,
        "redirect_uri": redirect_uri,
        "state": state,
        **auth.authorize_params,
    }
    if auth.scopes:
        params["scope"] = auth.scope_separator.join(auth.scopes)
    if challenge is not None:
        params["code_challenge"] = challenge
        params["code_challenge_method"] = "S256"
    separator = "&" if "?" in auth.authorize_url else "?"
    return f"{auth.authorize_url}{separator}{urlencode(params)}"


def _parse(body: bytes) -> dict[str, object]:
    try:
        data = json.loads(body)
    except ValueError:
        # A few providers (GitHub without Accept) answer form-encoded.
        data = dict(parse_qsl(body.decode(errors="replace")))
    return data if isinstance(data, dict) else {}


async def token_request(
    http: aiohttp.ClientSession,
    auth: c.OAuth2Auth | c.ClientCredentialsAuth,
    client_id: str,
    client_secret: str,
    form: dict[str, str],
    *,
    timeout: float = 20.0,
) -> TokenAnswer:
    """POST to the token endpoint with the integration's client authentication."""
    data = {**auth.token_params, **form}
    headers = {"Accept": "application/json"}
    if auth.client_auth == "client_secret_basic":
        pair = f"{quote(client_id, safe='')}:{quote(client_secret, safe='')}"
        headers["Authorization"] = "Basic " + base64.b64encode(pair.encode()).decode()
    else:
        data["client_id"] = client_id
        data["client_secret"] = client_secret
    try:
        async with http.post(
            auth.token_url,
            data=data,
            headers=headers,
            allow_redirects=False,
            timeout=aiohttp.ClientTimeout(total=timeout),
        ) as resp:
            status, body = resp.status, await resp.read()
    except (TimeoutError, aiohttp.ClientError) as exc:
        raise ProviderError(
            "transient", f"token endpoint unreachable: {type(exc).__name__}"
        ) from exc
    answer = _parse(body)
    error = str(answer.get("error") or "")
    if status == 429 or status >= 500:
        raise ProviderError("transient", f"token endpoint answered {status}", status)
    if error == "invalid_grant":
        raise ProviderError(
            "invalid_grant", "the provider refused the grant (invalid_grant)", status
        )
    access = answer.get("access_token")
    if status >= 400 or error or not isinstance(access, str) or not access:
        described = str(answer.get("error_description") or "")[:150]
        label = error or f"HTTP {status}"
        raise ProviderError(
            "rejected", f"token endpoint refused: {label} {described}".strip(), status
        )
    refresh = answer.get("refresh_token")
    expires_in = answer.get("expires_in")
    try:
        lifetime = int(str(expires_in)) if expires_in not in (None, "") else None
    except ValueError:
        lifetime = None
    return TokenAnswer(
        access_token=access,
        refresh_token=refresh if isinstance(refresh, str) and refresh else None,
        token_type=str(answer.get("token_type") or "Bearer"),
        scope=str(answer["scope"]) if answer.get("scope") is not None else None,
        expires_in=lifetime,
    )
