"""Master-key operations every service holding sealed data answers (operators only).

``tether.<service>.keys.status`` counts the sealed values under each master key;
``tether.<service>.keys.reseal`` moves a bounded slice of them onto the active key and
says where to continue. ``libs/common/reseal.py`` serves both and states the guarantees.
"""

from __future__ import annotations

from pydantic import Field

from libs.common.contracts.base import Contract, Operation, Reply, Request

SEALED_SERVICES: tuple[str, ...] = ("identity", "connections", "instances", "notifications")
"""The services that keep values sealed under the master keys."""


class SealedColumnStatus(Contract):
    """How many values of one sealed column each master key holds."""

    table: str
    column: str
    total: int = Field(description="Rows with a value in the column")
    done: int = Field(description="Of them, sealed under the active key")
    by_kid: dict[str, int] = Field(description="Rows per master key id")


class KeysStatusRequest(Request):
    """Ask how the service's sealed values are spread over the master keys."""


class KeysStatus(Reply):
    """The service's sealed values per master key, as the answering replica sees them."""

    service: str
    active_kid: str = Field(description="The key this replica seals new values under")
    kids: list[str] = Field(description="Every key this replica opens, the active one first")
    columns: list[SealedColumnStatus]


class ResealCursor(Contract):
    """Where a sweep continues: after this primary key in this column."""

    column: str = Field(description="table.column")
    after: list[str] = Field(description="The last primary key handled, one value per key column")


class KeysResealRequest(Request):
    """Re-seal a slice of the service's sealed values under the active master key."""

    kid: str | None = Field(
        default=None, description="Refuse unless the answering replica seals under this key"
    )
    cursor: ResealCursor | None = Field(default=None, description="None: sweep from the start")
    batch_size: int = Field(default=500, ge=1, le=5000, description="Rows per transaction")
    budget: float = Field(
        default=2.0, gt=0, le=8, description="Seconds of work before answering with a cursor"
    )


class KeysResealed(Reply):
    """What one slice did, and every column's progress after it."""

    service: str
    active_kid: str
    resealed: int = Field(description="Rows moved onto the active key by this call")
    failed: int = Field(description="Rows that could not be opened (left as they are; logged)")
    cursor: ResealCursor | None = Field(
        description="Where the next call continues; None when this sweep reached the end"
    )
    columns: list[SealedColumnStatus]


def keys_operations(
    service: str,
) -> tuple[Operation[KeysStatusRequest, KeysStatus], Operation[KeysResealRequest, KeysResealed]]:
    """Return the ``keys.status`` and ``keys.reseal`` operations of ``service``."""
    return (
        Operation(
            f"tether.{service}.keys.status",
            KeysStatusRequest,
            KeysStatus,
            f"Count the {service} service's sealed values per master key (operators)",
        ),
        Operation(
            f"tether.{service}.keys.reseal",
            KeysResealRequest,
            KeysResealed,
            f"Re-seal the {service} service's values under the active master key (operators)",
        ),
    )
