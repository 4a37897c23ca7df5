"""Sign deliveries the Standard Webhooks way, and keep signing secrets sealed (pure: no I/O).

* A secret is ``whsec_`` + base64 of 24 random bytes; the HMAC key is the decoded part.
* ``webhook-signature`` is ``v1,<base64 HMAC-SHA256 of "<webhook-id>.<timestamp>.<body>">``;
  during a rotation's overlap it holds one such signature per secret, space-separated,
  and any Standard Webhooks verifier accepts the message when one of them matches.
* Sealed secrets are bound to their endpoint row (and to their slot: current or previous),
  so a ciphertext copied onto another row, or into the other slot, does not open.
"""

from __future__ import annotations

import base64
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from uuid import UUID

from libs.common.crypto import Keyring, associated_data

PREFIX = "whsec_"
SECRET_PURPOSE = "webhook-secret"
PREVIOUS_PURPOSE = "webhook-secret-previous"


def new_secret() -> str:
    """Return a fresh signing secret."""
    return PREFIX + base64.b64encode(secrets.token_bytes(24)).decode()


def signature(secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """Return one ``v1,<base64>`` signature of a message under ``secret``."""
    key = base64.b64decode(secret.removeprefix(PREFIX))
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def headers(secrets_: Sequence[str], msg_id: str, timestamp: int, body: bytes) -> dict[str, str]:
    """Return the Standard Webhooks headers of one attempt, signed with every secret."""
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signature(s, msg_id, timestamp, body) for s in secrets_),
    }


def seal(
    keyring: Keyring, workspace_id: UUID, endpoint_id: UUID, secret: str, *, previous: bool = False
) -> str:
    """Encrypt a secret bound to its endpoint row and slot."""
    purpose = PREVIOUS_PURPOSE if previous else SECRET_PURPOSE
    return keyring.encrypt(secret.encode(), associated_data(workspace_id, endpoint_id, purpose))


def unseal(
    keyring: Keyring, workspace_id: UUID, endpoint_id: UUID, sealed: str, *, previous: bool = False
) -> str:
    """Decrypt a secret sealed by :func:`seal`."""
    purpose = PREVIOUS_PURPOSE if previous else SECRET_PURPOSE
    return keyring.decrypt(sealed, associated_data(workspace_id, endpoint_id, purpose)).decode()
