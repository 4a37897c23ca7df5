"""Identity's sealed columns, re-sealed under a new master key by ``libs/common/reseal.py``."""

from __future__ import annotations

from libs.common.reseal import SealedColumn
from services.identity.directory import secret_aad

SEALED: tuple[SealedColumn, ...] = (
    SealedColumn("workspaces", "secret_sealed", (("id", "uuid"),), lambda r: secret_aad(r["id"])),
    SealedColumn(
        "workspaces", "previous_secret_sealed", (("id", "uuid"),), lambda r: secret_aad(r["id"])
    ),
)
