"""Notifications' sealed columns, re-sealed under a new master key by ``libs/common/reseal.py``."""

from __future__ import annotations

from libs.common.crypto import associated_data
from libs.common.reseal import SealedColumn
from services.notifications.signing import PREVIOUS_PURPOSE, SECRET_PURPOSE

SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(
        "endpoints",
        "secret_sealed",
        (("id", "uuid"),),
        lambda r: associated_data(r["workspace_id"], r["id"], SECRET_PURPOSE),
        reads=("workspace_id",),
    ),
    SealedColumn(
        "endpoints",
        "previous_secret_sealed",
        (("id", "uuid"),),
        lambda r: associated_data(r["workspace_id"], r["id"], PREVIOUS_PURPOSE),
        reads=("workspace_id",),
    ),
)
