"""Remember, per customer, the token claims identity last applied, so fresh tokens skip it.

Identity does something for a customer token only when the customer is new to it or the
token's ``name`` or ``fields`` differ from what it holds (and refuses an archived
customer). The gateway therefore asks identity only when a customer token's claims are
not the ones identity last accepted for that customer; this cache says which those are.
It keeps one digest per customer: claims applied after it (another device's token, an
admin's change) make the older set stale, so only the newest can be trusted.

An entry is dropped when that could stop being true:

* ``customer.updated`` (an admin or another token changed the name or fields: the next
  token must apply its own again, as identity would) and ``customer.archived`` (the
  next token must be refused): :meth:`KnownCustomers.drop_customer`;
* ``workspace.updated`` (a new fields schema): :meth:`KnownCustomers.drop_workspace`;
* the TTL, which only bounds how long a missed event leaves an entry stale.

A registration that began before such a drop is not remembered (``since``).
"""

from __future__ import annotations

import hashlib
import json
from uuid import UUID

from libs.common.cache import TtlCache
from libs.common.token_rules import Claims


def claims_digest(claims: Claims) -> bytes:
    """Return a digest of what identity keeps of a customer token: its name and fields."""
    body = json.dumps([claims.name, claims.fields], sort_keys=True, separators=(",", ":"))
    return hashlib.sha256(body.encode()).digest()


class KnownCustomers:
    """The claims identity last accepted, by (workspace, customer)."""

    def __init__(self, size: int, ttl: float) -> None:
        # The value repeats the workspace so that a workspace's entries can be dropped at once.
        self._entries: TtlCache[tuple[UUID, str], tuple[UUID, bytes]] = TtlCache(size, ttl)

    @property
    def generation(self) -> int:
        """Return the drop count to read before asking identity (see :meth:`remember`)."""
        return self._entries.generation

    def known(self, workspace_id: UUID, customer_id: str, digest: bytes) -> bool:
        """Tell whether identity already holds this customer with exactly these claims."""
        entry = self._entries.get((workspace_id, customer_id))
        return entry is not None and entry[1] == digest

    def remember(self, workspace_id: UUID, customer_id: str, digest: bytes, *, since: int) -> None:
        """Note that identity accepted these claims (unless the customer was dropped since)."""
        self._entries.put((workspace_id, customer_id), (workspace_id, digest), since=since)

    def drop_customer(self, workspace_id: UUID, customer_id: str) -> None:
        """Forget a customer (changed or archived in identity)."""
        self._entries.drop((workspace_id, customer_id))

    def drop_workspace(self, workspace_id: UUID) -> None:
        """Forget every customer of a workspace (its settings changed)."""
        self._entries.drop_where(lambda entry: entry[0] == workspace_id)

    def __len__(self) -> int:
        return len(self._entries)
