"""Answer integration operations; templates make a known app one call away."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any
from uuid import UUID

import asyncpg
from pydantic import TypeAdapter, ValidationError

from libs.common.contracts import connections as c
from libs.common.crypto import Keyring
from libs.common.errors import InvalidInput, NotFound, invalid_from_validation
from services.connections.secrets import seal_client_secret
from services.connections.store import integrations
from services.connections.store.integrations import IntegrationFields, IntegrationRecord

TEMPLATES_FILE = Path(__file__).parent / "templates.json"
_AUTH: TypeAdapter[c.AuthSpec] = TypeAdapter(c.AuthSpec)


def integration_reply(record: IntegrationRecord) -> c.Integration:
    """Return the integration as the API shows it (its fields by name: never the secret)."""
    return c.Integration.model_validate(record, from_attributes=True)


def load_templates(path: Path = TEMPLATES_FILE) -> dict[str, dict[str, Any]]:
    """Read the provider catalogue (camelCase JSON, as the API takes it)."""
    data: dict[str, dict[str, Any]] = json.loads(path.read_text())
    return data


class Integrations:
    """Integration handlers."""

    def __init__(
        self, pool: asyncpg.Pool[Any], keyring: Keyring, templates: dict[str, dict[str, Any]]
    ):
        self._pool = pool
        self._keyring = keyring
        self._templates = templates

    async def templates(self, req: c.TemplateListRequest) -> c.TemplatePage:
        """List the provider catalogue."""
        req.ctx.workspace()
        return c.TemplatePage(
            items=[
                c.Template(key=key, name=t["name"], auth_type=t["auth"]["type"])
                for key, t in sorted(self._templates.items())
            ]
        )

    async def list(self, req: c.IntegrationListRequest) -> c.IntegrationPage:
        """List integrations (admins and customers; never secrets)."""
        workspace_id = req.ctx.workspace()
        async with self._pool.acquire() as conn:
            rows = await integrations.list_integrations(conn, workspace_id)
        return c.IntegrationPage(items=[integration_reply(r) for r in rows])

    async def get(self, req: c.IntegrationGetRequest) -> c.Integration:
        """Read one integration."""
        workspace_id = req.ctx.workspace()
        async with self._pool.acquire() as conn:
            record = await integrations.select_integration(conn, workspace_id, req.key)
        if record is None:
            raise NotFound(f"integration {req.key} not found")
        return integration_reply(record)

    async def create(self, req: c.IntegrationCreateRequest) -> c.Integration:
        """Create from a template and/or a full spec; the request's parts win."""
        workspace_id = req.ctx.admin_workspace()
        base: dict[str, Any] = {}
        if req.template is not None:
            if req.template not in self._templates:
                known = ", ".join(sorted(self._templates))
                raise InvalidInput(
                    f"no template named {req.template}; known: {known}",
                    details=[{"field": "template"}],
                )
            base = self._templates[req.template]
        try:
            auth = req.auth or (_AUTH.validate_python(base["auth"]) if "auth" in base else None)
            api = req.api or (c.ApiSpec.model_validate(base["api"]) if "api" in base else None)
            test = req.test or (
                c.TestRequestSpec.model_validate(base["test"]) if "test" in base else None
            )
        except ValidationError as exc:
            raise invalid_from_validation(exc, message="the template is not valid") from exc
        if auth is None:
            raise InvalidInput("give an auth spec or a template", details=[{"field": "auth"}])
        integration = IntegrationFields(
            key=req.key,
            name=req.name or base.get("name") or req.key,
            template=req.template,
            auth=_with_client_id(auth, req.client_id),
            api=api,
            test=test,
            client_secret_sealed=self._seal(workspace_id, req.key, req.client_secret),
        )
        async with self._pool.acquire() as conn:
            record = await integrations.insert_integration(conn, workspace_id, integration)
        return integration_reply(record)

    async def patch(self, req: c.IntegrationPatchRequest) -> c.Integration:
        """Change what is given; the client secret is write-only."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            # Locked: the row is written back whole, so nothing may change it in between
            # (another patch, or a master-key re-seal of the client secret).
            record = await integrations.select_integration(
                conn, workspace_id, req.key, for_update=True
            )
            if record is None:
                raise NotFound(f"integration {req.key} not found")
            given = req.model_fields_set
            auth = req.auth if req.auth is not None else record.auth
            if "client_id" in given:
                auth = _with_client_id(auth, req.client_id)
            changed = record.model_copy(
                update={
                    "name": req.name or record.name,
                    "auth": auth,
                    "api": req.api if "api" in given else record.api,
                    "test": req.test if "test" in given else record.test,
                    "client_secret_sealed": (
                        self._seal(workspace_id, req.key, req.client_secret)
                        if "client_secret" in given
                        else record.client_secret_sealed
                    ),
                }
            )
            updated = await integrations.update_integration(conn, changed)
        return integration_reply(updated)

    async def delete(self, req: c.IntegrationDeleteRequest) -> c.Deleted:
        """Delete an integration no live connection uses."""
        workspace_id = req.ctx.admin_workspace()
        async with self._pool.acquire() as conn, conn.transaction():
            if not await integrations.delete_integration(conn, workspace_id, req.key):
                raise NotFound(f"integration {req.key} not found")
        return c.Deleted(deleted=True)

    def _seal(self, workspace_id: UUID, key: str, secret: str | None) -> str | None:
        return seal_client_secret(self._keyring, workspace_id, key, secret) if secret else None


def _with_client_id(auth: c.AuthSpec, client_id: str | None) -> c.AuthSpec:
    if client_id is None or not isinstance(auth, c.OAuth2Auth | c.ClientCredentialsAuth):
        return auth
    return auth.model_copy(update={"client_id": client_id})
