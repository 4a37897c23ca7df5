"""The one routing table: (method, path) → contract, auth, status."""

from __future__ import annotations

from dataclasses import dataclass
from enum import Enum
from typing import Any

from libs.common.contracts import identity
from libs.common.contracts.base import Operation


class Auth(Enum):
    """Who may call a route."""

    PUBLIC = "public"
    ADMIN = "admin"
    CUSTOMER = "customer"
    ANY = "any"  # an admin or a customer token


@dataclass(frozen=True)
class Route:
    """One HTTP route served by one operation."""

    method: str
    path: str
    op: Operation[Any, Any]
    auth: Auth
    tag: str
    status: int = 200
    summary: str = ""

    @property
    def takes_body(self) -> bool:
        """Tell whether non-path fields come from the JSON body (else from the query)."""
        return self.method in ("POST", "PUT", "PATCH")

    @property
    def path_params(self) -> tuple[str, ...]:
        """Return the ``{name}`` parameters of the path."""
        return tuple(part[1:-1] for part in self.path.split("/") if part.startswith("{"))


ROUTES: tuple[Route, ...] = (
    Route("GET", "/workspace", identity.WORKSPACE_GET, Auth.ADMIN, "workspace"),
)
