"""Answer ``tether.connections.auth_types.list``: one item per ``auth.type`` of an integration.

The schemas hold no values; a field holding a secret is marked ``writeOnly`` with
``format: password`` (see ``libs/common/contracts/schemas.py``). An integration's client
secret is not part of its auth spec: it is the integration's write-only ``clientSecret``.
"""

from __future__ import annotations

from collections.abc import Mapping
from types import MappingProxyType

from libs.common.contracts import connections as c
from libs.common.contracts import schemas as s

TITLES: Mapping[str, str] = MappingProxyType(
    {
        "oauth2": "OAuth 2.0 (authorization code)",
        "client_credentials": "OAuth 2.0 (client credentials)",
        "api_key": "API key",
        "basic": "Username and password",
    }
)


class AuthTypes:
    """Handler of the auth type catalogue (built once; the same for every workspace)."""

    def __init__(self) -> None:
        self._types = s.SchemaTypeList(items=s.discriminated_items(c.AuthSpec, "type", TITLES))

    async def list(self, req: s.TypeListRequest) -> s.SchemaTypeList:
        """Return every way an integration may authenticate its connections."""
        req.ctx.workspace()
        return self._types
