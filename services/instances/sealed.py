"""Instances' sealed columns, re-sealed under a new master key by ``libs/common/reseal.py``."""

from __future__ import annotations

from libs.common.crypto import associated_data
from libs.common.reseal import SealedColumn
from services.instances.elements import STATIC_SECRET_PURPOSE
from services.instances.steps import SECRET_PURPOSE, TOKEN_PURPOSE

SEALED: tuple[SealedColumn, ...] = (
    SealedColumn(
        "app_event_types",
        "static_secret_sealed",
        (("workspace_id", "uuid"), ("key", "text")),
        lambda r: associated_data(r["workspace_id"], r["key"], STATIC_SECRET_PURPOSE),
    ),
    SealedColumn(
        "subscriptions",
        "token_sealed",
        (("id", "uuid"),),
        lambda r: associated_data(r["workspace_id"], r["id"], TOKEN_PURPOSE),
        reads=("workspace_id",),
    ),
    SealedColumn(
        "subscriptions",
        "secret_sealed",
        (("id", "uuid"),),
        lambda r: associated_data(r["workspace_id"], r["id"], SECRET_PURPOSE),
        reads=("workspace_id",),
    ),
)
