"""Refuse outbound HTTP that a user-supplied URL must not make (server-side request forgery).

http-request nodes and notification endpoints call URLs typed by a workspace or its
customers. Such a URL must not reach what only the machine Tether runs on can reach: by
default every address that is not globally routable is refused — loopback, private
(RFC 1918, unique local), link-local, shared (CGNAT), reserved, unspecified, multicast —
and cloud metadata addresses are refused always, whatever the setting.

Two checks, both needed:

* :func:`check_url` before a request (and when a URL is saved): the scheme, and a host
  written as an IP literal (aiohttp never asks a resolver about those).
* :class:`GuardedResolver` at connection time: a host name is refused when any address it
  resolves to is refused. The addresses checked are the ones connected to, so a name that
  resolves to a public address when saved and to 127.0.0.1 later (DNS rebinding) gains
  nothing. :func:`guarded_session` builds a client session that uses it.

An operator allows private addresses (a lab, the tests, an on-premises app) with
``UrlPolicy(allow_private=True)`` — the services read it from ``TETHER_ALLOW_PRIVATE_URLS``.
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import aiohttp
from aiohttp.abc import AbstractResolver, ResolveResult
from aiohttp.resolver import DefaultResolver

from libs.common import tracing
from libs.common.errors import InvalidInput

IpAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

METADATA = frozenset(
    ipaddress.ip_address(a)
    for a in ("169.254.169.254", "169.254.170.2", "fd00:ec2::254", "100.100.100.200")
)
"""Cloud instance metadata addresses: refused even when private addresses are allowed."""


@dataclass(frozen=True)
class UrlPolicy:
    """Which outbound URLs are allowed."""

    allow_private: bool = False
    """Allow loopback, private and link-local addresses (and plain http to them)."""
    require_https: bool = False
    """Refuse plain http to public addresses (notification endpoints)."""


class BlockedAddressError(OSError):
    """A URL's host is, or resolves to, an address the policy refuses."""


def refused(address: IpAddress, policy: UrlPolicy) -> str | None:
    """Return why ``address`` is refused under ``policy``, or None when it is allowed."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        address = address.ipv4_mapped
    if address in METADATA:
        return f"{address} is a cloud metadata address"
    if policy.allow_private or (address.is_global and not address.is_multicast):
        return None
    return f"{address} is not a public address (loopback, private, link-local or reserved)"


def _literal(host: str) -> IpAddress | None:
    try:
        return ipaddress.ip_address(host.strip("[]"))
    except ValueError:
        return None


def check_url(url: str, policy: UrlPolicy, *, field: str = "url") -> None:
    """Raise InvalidInput (naming ``field``) when ``url`` may not be called under ``policy``.

    Host names are checked again, resolved, when the request connects (GuardedResolver).
    """

    def bad(message: str) -> InvalidInput:
        return InvalidInput(f"{field}: {message}", details=[{"field": field, "message": message}])

    try:
        parts = urlsplit(url)
        host = parts.hostname
        parts.port  # noqa: B018 - raises ValueError on a bad port
    except ValueError as exc:
        raise bad(f"not a valid URL: {exc}") from exc
    if parts.scheme not in ("http", "https") or not host:
        raise bad("must be an http(s) URL with a host")
    if host.rstrip(".").lower() in ("localhost", "metadata.google.internal") or host.endswith(
        ".localhost"
    ):
        literal: IpAddress | None = ipaddress.ip_address("127.0.0.1")
        if host.startswith("metadata"):
            raise bad("the host is a cloud metadata address")
    else:
        literal = _literal(host)
    if literal is not None and (why := refused(literal, policy)):
        raise bad(why)
    if policy.require_https and parts.scheme != "https" and not policy.allow_private:
        raise bad("must use https")


class GuardedResolver(AbstractResolver):
    """Resolve like aiohttp does, then refuse names with an address the policy refuses."""

    def __init__(self, policy: UrlPolicy, inner: AbstractResolver | None = None) -> None:
        self._policy = policy
        self._inner = inner or DefaultResolver()

    async def resolve(
        self, host: str, port: int = 0, family: socket.AddressFamily = socket.AF_INET
    ) -> list[ResolveResult]:
        """Return ``host``'s addresses, or raise BlockedAddressError if any is refused."""
        found = await self._inner.resolve(host, port, family)
        for result in found:
            address = _literal(result["host"])
            if address is not None and (why := refused(address, self._policy)):
                raise BlockedAddressError(f"{host} resolves to a refused address: {why}")
        return found

    async def close(self) -> None:
        """Close the wrapped resolver."""
        await self._inner.close()


def guarded_session(policy: UrlPolicy, **session_options: Any) -> aiohttp.ClientSession:
    """Return a client session whose connections go only where ``policy`` allows.

    Callers still run :func:`check_url` on each URL (IP literals skip resolvers).
    """
    connector = aiohttp.TCPConnector(resolver=GuardedResolver(policy), limit=256)
    session_options.setdefault("trace_configs", [tracing.client_trace_config()])
    return aiohttp.ClientSession(connector=connector, **session_options)
