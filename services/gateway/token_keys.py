"""Keep each workspace's token verification keys in the gateway, fetched from identity.

The gateway verifies tokens itself (:mod:`libs.common.token_rules`) with the keys
identity hands out on ``tokens.verification_keys``. They are kept per replica, by
workspace key (a token's ``iss``), until the first of:

* ``workspace.updated`` (a rotation, new public keys, new settings): every replica hears
  it and drops the workspace's keys (:meth:`VerificationKeyCache.drop_workspace`);
* the end of the previous secret's grace, when it is one of them;
* the cache's TTL, which only bounds how long a missed event leaves them stale.

A fetch that began before a drop is used for its request but not kept (the generation
check of :class:`~libs.common.cache.TtlCache`), and concurrent misses of one workspace
share one fetch. Secrets live in :class:`~libs.common.token_rules.WorkspaceKeys`, whose
``repr`` leaves them out; nothing here logs or returns them.
"""

from __future__ import annotations

import time
from datetime import UTC, datetime
from uuid import UUID

from libs.common import token_rules
from libs.common.bus import Bus
from libs.common.cache import TtlCache
from libs.common.contracts import identity
from libs.common.contracts.base import Context
from libs.common.errors import NotFound
from libs.common.singleflight import SingleFlight
from libs.common.token_rules import WorkspaceKeys
from services.gateway.retry import idempotent


def workspace_keys(reply: identity.VerificationKeys, now: datetime) -> WorkspaceKeys:
    """Load identity's answer: public keys parsed once, a previous secret only inside its grace."""
    grace_end = reply.previous_secret_expires_at
    secrets = [secret.get_secret_value() for secret in reply.secrets]
    if grace_end is not None and grace_end <= now:
        secrets, grace_end = secrets[:1], None
    return WorkspaceKeys(
        workspace_id=reply.workspace_id,
        workspace_key=reply.workspace_key,
        settings=reply.settings,
        secrets=tuple(secrets),
        public_keys=token_rules.load_public_keys(reply.public_keys),
        previous_secret_expires_at=grace_end if len(secrets) > 1 else None,
    )


class VerificationKeyCache:
    """Workspaces' verification keys by workspace key, fetched from identity on a miss."""

    def __init__(self, bus: Bus, size: int, ttl: float) -> None:
        self._bus = bus
        self._entries: TtlCache[str, WorkspaceKeys] = TtlCache(size, ttl)
        self._fetching: SingleFlight[str, WorkspaceKeys] = SingleFlight()

    @property
    def generation(self) -> int:
        """Return how many drops this cache has heard of so far."""
        return self._entries.generation

    def cached(self, workspace_key: str) -> WorkspaceKeys | None:
        """Return the keys kept for ``workspace_key``, if any (no I/O)."""
        return self._entries.get(workspace_key)

    async def fetch(self, workspace_key: str, request_id: str) -> WorkspaceKeys:
        """Ask identity for the workspace's current keys and keep them.

        Refuses the token with 401 ``token_unknown_issuer`` when no workspace has the key.
        Concurrent fetches of one workspace share one call.
        """
        if not token_rules.issuer_can_exist(workspace_key):
            raise token_rules.unknown_issuer()
        return await self._fetching.run(
            workspace_key, lambda: self._fetch(workspace_key, request_id)
        )

    async def _fetch(self, workspace_key: str, request_id: str) -> WorkspaceKeys:
        since = self._entries.generation  # a drop while this call is out: do not keep the answer
        request = identity.VerificationKeysRequest(
            workspace_key=workspace_key, ctx=Context(principal="system", request_id=request_id)
        )
        try:
            reply = await idempotent(
                lambda: self._bus.call(identity.TOKEN_VERIFICATION_KEYS, request)
            )
        except NotFound as exc:
            raise token_rules.unknown_issuer() from exc
        keys = workspace_keys(reply, datetime.now(UTC))
        grace_end = keys.previous_secret_expires_at
        life = None if grace_end is None else grace_end.timestamp() - time.time()
        self._entries.put(workspace_key, keys, life, since=since)
        return keys

    def drop_workspace(self, workspace_id: UUID) -> None:
        """Forget a workspace's keys (its secret, public keys or settings changed)."""
        self._entries.drop_where(lambda keys: keys.workspace_id == workspace_id)

    def __len__(self) -> int:
        return len(self._entries)
