"""Mint the access tokens Tether accepts: HS256 JWTs signed with the workspace secret.

What the API checks (its ``token_rules``): ``iss`` is the workspace key, ``exp`` is
required and at most the workspace's ``maxTokenLifetime`` (86400 s by default) after
``iat``; a customer token names the customer in ``sub`` (or ``id``) with optional
``name`` and ``fields`` (the customer is created or updated from them on first sight);
an admin token carries ``isAdmin: true`` and no customer. Mint them on your backend only:
the secret must never reach a browser.
"""

from __future__ import annotations

import threading
import time
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import Any

import jwt

__all__ = ["TokenMinter", "admin_token", "customer_token"]

DEFAULT_TTL = 3600
"""Seconds a minted token lives unless told otherwise (well under the default maximum)."""


def _claims(key: str, ttl: int, now: float | None) -> dict[str, Any]:
    if not key:
        raise ValueError("the workspace key is empty")
    if ttl <= 0:
        raise ValueError("ttl must be a positive number of seconds")
    issued = int(time.time() if now is None else now)
    return {"iss": key, "iat": issued, "exp": issued + ttl}


def customer_token(
    key: str,
    secret: str,
    *,
    id: str,  # the claim the API documents (it shadows a builtin on purpose)
    name: str | None = None,
    fields: Mapping[str, Any] | None = None,
    ttl: int = DEFAULT_TTL,
    now: float | None = None,
) -> str:
    """Return a token for customer ``id`` of workspace ``key``, valid ``ttl`` seconds.

    ``name`` and ``fields`` are stored on the customer when they differ from what the
    workspace holds (``fields`` must satisfy the workspace's customer fields schema).
    """
    if not id:
        raise ValueError("a customer token needs a customer id")
    claims = _claims(key, ttl, now)
    claims["sub"] = id
    if name is not None:
        claims["name"] = name
    if fields is not None:
        claims["fields"] = dict(fields)
    return jwt.encode(claims, secret, algorithm="HS256")


def admin_token(key: str, secret: str, *, ttl: int = DEFAULT_TTL, now: float | None = None) -> str:
    """Return an admin token of workspace ``key``, valid ``ttl`` seconds."""
    claims = _claims(key, ttl, now)
    claims["isAdmin"] = True
    return jwt.encode(claims, secret, algorithm="HS256")


@dataclass
class TokenMinter:
    """Hand out a token, minting a fresh one when the current one nears its end.

    A client given a minter as its ``token`` never sends an expired token, and sends the
    same token for most of its life (the API caches verified tokens). Thread-safe.
    """

    key: str
    secret: str = field(repr=False)
    customer_id: str | None = None
    """None: an admin token."""
    name: str | None = None
    fields: Mapping[str, Any] | None = None
    ttl: int = DEFAULT_TTL
    renew_before: int = 60
    clock: Callable[[], float] = field(default=time.time, repr=False)
    """Seconds since the epoch (a test may move time itself)."""
    _token: str | None = field(default=None, init=False, repr=False)
    _expires: float = field(default=0.0, init=False, repr=False)
    _lock: threading.Lock = field(default_factory=threading.Lock, init=False, repr=False)

    def __call__(self) -> str:
        """Return a token with more than ``renew_before`` seconds left."""
        with self._lock:
            now = self.clock()
            if self._token is None or self._expires - now <= self.renew_before:
                if self.customer_id is None:
                    self._token = admin_token(self.key, self.secret, ttl=self.ttl, now=now)
                else:
                    self._token = customer_token(
                        self.key,
                        self.secret,
                        id=self.customer_id,
                        name=self.name,
                        fields=self.fields,
                        ttl=self.ttl,
                        now=now,
                    )
                self._expires = int(now) + self.ttl
            return self._token
