"""Keep credential values: seal them to their row, schedule their renewal, put them into API requests (pure: no I/O)."""

from __future__ import annotations

import base64
import json
import re
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any
from uuid import UUID

from jsonschema import Draft202012Validator

from libs.common.contracts import connections as c
from libs.common.crypto import Keyring, associated_data
from libs.common.errors import InvalidInput
from services.connections.oauth import TokenAnswer
from services.connections.settings import ConnectionsOptions
from services.connections.store.connections import ConnectionRecord

PURPOSE = "connection-credentials"
_PLACEHOLDER = re.compile(r"\{([A-Za-z_][A-Za-z0-9_]*)\}")


def seal(keyring: Keyring, workspace_id: UUID, connection_id: UUID, values: dict[str, Any]) -> str:
    """Encrypt credentials bound to their connection row."""
    aad = associated_data(workspace_id, connection_id, PURPOSE)
    return keyring.encrypt(json.dumps(values).encode(), aad)


def unseal(keyring: Keyring, record: ConnectionRecord) -> dict[str, Any]:
    """Decrypt a connection's credentials."""
    aad = associated_data(record.workspace_id, record.id, PURPOSE)
    values: dict[str, Any] = json.loads(keyring.decrypt(record.credentials_sealed, aad))
    return values


@dataclass(frozen=True)
class Schedule:
    """When credentials expire, when to renew them, when to check them."""

    expires_at: datetime | None
    refresh_due_at: datetime | None
    check_due_at: datetime | None


def schedule(
    now: datetime,
    options: ConnectionsOptions,
    *,
    expires_in: int | None,
    default_lifetime: int | None,
    renewable: bool,
) -> Schedule:
    """Plan renewal: ``margin`` before expiry, but never earlier than half the lifetime.

    A token that does not say when it expires is given the integration's default lifetime
    and is also checked with the test request on a schedule, so it cannot die silently.
    """
    if expires_in is None and default_lifetime is None:
        return Schedule(None, None, None)
    lifetime = expires_in if expires_in is not None else default_lifetime
    assert lifetime is not None
    expires_at = now + timedelta(seconds=lifetime)
    lead = min(options.refresh_margin, lifetime / 2)
    refresh_due = expires_at - timedelta(seconds=lead) if renewable else None
    check_due = now + timedelta(seconds=options.check_interval) if expires_in is None else None
    return Schedule(expires_at, refresh_due, check_due)


def oauth_values(answer: TokenAnswer, previous: dict[str, Any] | None = None) -> dict[str, Any]:
    """Return stored OAuth credentials; keep the old refresh token when none came back."""
    refresh = answer.refresh_token or (previous or {}).get("refresh_token")
    values: dict[str, Any] = {
        "access_token": answer.access_token,
        "token_type": answer.token_type,
        "refresh_token": refresh,
        "scope": answer.scope,
    }
    for keep in ("client_id", "client_secret"):  # per-connection client credentials
        if previous and keep in previous:
            values[keep] = previous[keep]
    return values


def template_values(values: dict[str, Any]) -> dict[str, str]:
    """Return what API templates may name: every string credential, plus ``basic``."""
    out = {k: v for k, v in values.items() if isinstance(v, str)}
    if "username" in out and "password" in out:
        out["basic"] = base64.b64encode(f"{out['username']}:{out['password']}".encode()).decode()
    return out


def render(template: str, values: dict[str, str]) -> str:
    """Fill ``{name}`` placeholders; a name the credentials lack is a configuration error."""

    def fill(match: re.Match[str]) -> str:
        name = match.group(1)
        if name not in values:
            raise InvalidInput(
                f"the integration's API template names {{{name}}}, which these credentials lack",
                code="template_unknown_value",
            )
        return values[name]

    return _PLACEHOLDER.sub(fill, template)


def inject(api: c.ApiSpec, values: dict[str, Any]) -> tuple[dict[str, str], dict[str, str]]:
    """Return the headers and query parameters that carry the credentials."""
    named = template_values(values)
    headers = {k: render(v, named) for k, v in api.headers.items()}
    query = {k: render(v, named) for k, v in api.query.items()}
    return headers, query


def form_problems(form: dict[str, Any], values: dict[str, Any]) -> list[dict[str, str]]:
    """Check entered credentials against the form's schema, naming fields, never values.

    jsonschema's own messages quote the value (``'sk_live_…' does not match …``); these
    are secrets, so the message says only which rule the field broke.
    """
    problems = []
    for err in Draft202012Validator(form).iter_errors(values):
        path = ".".join(str(p) for p in err.absolute_path)
        if err.validator == "required":
            missing = err.message.split("'")[1] if "'" in err.message else "a field"
            problems.append({"field": missing, "message": f"{missing} is required"})
        else:
            problems.append(
                {
                    "field": path or "(form)",
                    "message": f"{path or 'the form'} fails '{err.validator}'",
                }
            )
    return sorted(problems, key=lambda p: p["field"])
