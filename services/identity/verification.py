"""Mint access tokens; the verification rules are :mod:`libs.common.token_rules`.

The rules are shared with the gateway, which verifies tokens itself with keys fetched
from identity; they are re-exported here for identity's own modules.
"""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from typing import Any

import jwt

from libs.common.token_rules import (
    HMAC_ALGORITHMS,
    Claims,
    Unverified,
    WorkspaceKeys,
    load_public_keys,
    peek,
    verify,
)

__all__ = [
    "HMAC_ALGORITHMS",
    "Claims",
    "Unverified",
    "WorkspaceKeys",
    "load_public_keys",
    "mint",
    "peek",
    "verify",
]


def mint(
    workspace_key: str,
    secret: str,
    *,
    now: datetime,
    ttl: int,
    customer_id: str | None = None,
    admin: bool = False,
    name: str | None = None,
    fields: dict[str, Any] | None = None,
) -> tuple[str, datetime]:
    """Sign an HS256 token for a customer or an admin; return it with its expiry."""
    expires_at = now + timedelta(seconds=ttl)
    claims: dict[str, Any] = {
        "iss": workspace_key,
        "iat": int(now.timestamp()),
        "exp": int(expires_at.timestamp()),
    }
    if admin:
        claims["isAdmin"] = True
    else:
        claims["id"] = customer_id
        if name is not None:
            claims["name"] = name
        if fields is not None:
            claims["fields"] = fields
    return jwt.encode(claims, secret, algorithm="HS256"), datetime.fromtimestamp(claims["exp"], UTC)
