"""Connections' sealed columns, re-sealed under a new master key by ``libs/common/reseal.py``."""

from __future__ import annotations

from libs.common.crypto import associated_data
from libs.common.reseal import SealedColumn
from services.connections import connect, secrets, vault

SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(
        "integrations",
        "client_secret_sealed",
        (("workspace_id", "uuid"), ("key", "text")),
        lambda r: associated_data(r["workspace_id"], r["key"], secrets.PURPOSE),
    ),
    SealedColumn(
        "connect_sessions",
        "code_verifier_sealed",
        (("id", "uuid"),),
        lambda r: associated_data(r["workspace_id"], r["id"], connect.PKCE_PURPOSE),
        reads=("workspace_id",),
    ),
    SealedColumn(
        "connections",
        "credentials_sealed",
        (("id", "uuid"),),
        lambda r: associated_data(r["workspace_id"], r["id"], vault.PURPOSE),
        reads=("workspace_id",),
    ),
)
