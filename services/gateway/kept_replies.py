"""Keep hot replies per replica, so that a repeated read costs no hop to a service.

A route may say its reply is about one object (``Route.keep``): the calling customer
(``GET /customers/me``) or the connection in its path (``GET /connections/{id}/credentials``).
The service decides whether and for how long the reply may be answered again
(:class:`~libs.common.bus.Kept`, the ``Tether-Keep-For`` header: identity for as long as nothing
changes, connections until the credentials are due for renewal); the gateway keeps it at
most its own TTL, per ``(workspace, object)`` and for the caller that read it only — a
different caller (another admin token's principal, another customer) misses and asks.

An entry is dropped when the object could have changed:

* by the object's events, heard by every replica (``customer.updated|archived|restored``,
  ``workspace.updated``, every ``connection.*`` event): see ``app.auth_context``;
* at once by this replica when it forwards a change of the object (``Route.drops``), or
  when identity is told new claims of the customer (it may just have changed them), so
  a write is seen by the next read through the same replica before its event arrives;
* by time: the service's keep-for and the TTL, which bound how long a missed event (a
  core-NATS subscription, at most once) leaves it stale.

A read that began before a drop of its object is not kept (``since``, as in
:class:`~libs.common.cache.TtlCache`). Credentials are kept sealed with a key made by this
process at start (AES-GCM, never stored or sent anywhere): they are in plaintext only
while a request is being answered, as in the connections service's own cache.
"""

from __future__ import annotations

import os
from uuid import UUID

from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.common.cache import TtlCache

Caller = tuple[str | None, str | None]
"""Who read a reply: (principal, customer id)."""


class KeptReplies:
    """Replies by (workspace, object), each for the caller that read it; credentials sealed."""

    def __init__(self, size: int, ttl: float) -> None:
        self._entries: TtlCache[tuple[UUID, str], tuple[UUID, Caller, bool, bytes]] = TtlCache(
            size, ttl
        )
        self._aead = AESGCM(AESGCM.generate_key(bit_length=128))

    @property
    def generation(self) -> int:
        """Return the drop count to read before asking the service (see :meth:`keep`)."""
        return self._entries.generation

    def get(self, workspace_id: UUID, obj: str, caller: Caller) -> bytes | None:
        """Return the reply ``caller`` read about ``obj`` while it is still trusted."""
        entry = self._entries.get((workspace_id, obj))
        if entry is None or entry[1] != caller:
            return None
        _, _, sealed, body = entry
        return self._aead.decrypt(body[:12], body[12:], obj.encode()) if sealed else body

    def keep(
        self,
        workspace_id: UUID,
        obj: str,
        caller: Caller,
        body: bytes,
        seconds: float,
        *,
        since: int,
        secret: bool,
    ) -> None:
        """Keep ``body`` for ``seconds`` at most (unless ``obj`` was dropped since ``since``).

        A ``secret`` body (credentials) is kept sealed and opened for each answer.
        """
        if secret:
            nonce = os.urandom(12)
            body = nonce + self._aead.encrypt(nonce, body, obj.encode())
        entry = (workspace_id, caller, secret, body)
        self._entries.put((workspace_id, obj), entry, seconds, since=since)

    def drop(self, workspace_id: UUID, obj: str) -> None:
        """Forget what is kept of ``obj`` (it changed, here or in another replica)."""
        self._entries.drop((workspace_id, obj))

    def drop_workspace(self, workspace_id: UUID) -> None:
        """Forget everything kept of a workspace (its settings changed)."""
        self._entries.drop_where(lambda entry: entry[0] == workspace_id)

    def __len__(self) -> int:
        return len(self._entries)


def customer_object(customer_id: str) -> str:
    """Return the kept-reply object name of a customer."""
    return f"customer:{customer_id}"


def connection_object(connection_id: UUID | str) -> str:
    """Return the kept-reply object name of a connection."""
    return f"connection:{connection_id}"
