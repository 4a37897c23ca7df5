"""Encrypt secrets at rest: AES-256-GCM envelope encryption under rotating master keys.

Each value gets a fresh 256-bit data key; the data key is sealed under the active master
key (key id ``kid``) and the value under the data key. Both seals use the caller's
associated data (workspace id + row id), so a ciphertext copied onto another row does
not decrypt. Rotation re-seals the data key under the now-active master key; retired
keys stay in ``TETHER_MASTER_KEYS`` until nothing is sealed under them
(``libs/common/reseal.py`` moves every stored value onto the active key, online).

Sealed form (ASCII, safe in a text column)::

    v1.<kid>.<base64url(nonce + sealed data key)>.<base64url(nonce + sealed value)>
"""

from __future__ import annotations

import base64
import os
import re
import secrets
from uuid import UUID

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives.ciphers.aead import AESGCM

from libs.common.errors import Internal

_KID = re.compile(r"^[A-Za-z0-9_-]{1,32}$")
_VERSION = "v1"


class DecryptionFailed(Internal):
    """A sealed value could not be opened (wrong row, unknown key, or tampering)."""

    default_code = "decryption_failed"


def _b64e(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def _b64d(text: str) -> bytes:
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def associated_data(workspace_id: UUID | str, row_id: UUID | str, purpose: str = "") -> bytes:
    """Return the associated data that binds a ciphertext to one row."""
    return f"tether:{purpose}:{workspace_id}:{row_id}".encode()


class Keyring:
    """The master keys; the first one seals, all of them open."""

    def __init__(self, keys: list[tuple[str, bytes]]) -> None:
        if not keys:
            raise ValueError("at least one master key is needed")
        for kid, key in keys:
            if not _KID.match(kid):
                raise ValueError(f"master key id {kid!r} must be 1-32 of [A-Za-z0-9_-]")
            if len(key) != 32:
                raise ValueError(f"master key {kid!r} must be 32 bytes (AES-256)")
        if len({kid for kid, _ in keys}) != len(keys):
            raise ValueError("master key ids must be unique")
        self._active = keys[0][0]
        self._keys = {kid: AESGCM(key) for kid, key in keys}

    @classmethod
    def from_setting(cls, value: str) -> Keyring:
        """Parse ``kid:base64key,kid2:base64key`` (the first is active)."""
        pairs: list[tuple[str, bytes]] = []
        for part in (p.strip() for p in value.split(",")):
            if not part:
                continue
            kid, sep, b64 = part.partition(":")
            if not sep:
                raise ValueError("master keys look like kid:base64key,kid2:base64key")
            try:
                pairs.append((kid, base64.b64decode(b64, validate=True)))
            except ValueError as exc:
                raise ValueError(f"master key {kid!r} is not valid base64") from exc
        return cls(pairs)

    @property
    def active_kid(self) -> str:
        """Return the id of the key that seals new values."""
        return self._active

    @property
    def kids(self) -> tuple[str, ...]:
        """Return the ids of every key this ring opens, the active one first."""
        return tuple(self._keys)

    def encrypt(self, plaintext: bytes, aad: bytes) -> str:
        """Seal ``plaintext`` bound to ``aad`` under a fresh data key."""
        dek = AESGCM.generate_key(bit_length=256)
        data_nonce, key_nonce = os.urandom(12), os.urandom(12)
        sealed_value = AESGCM(dek).encrypt(data_nonce, plaintext, aad)
        sealed_key = self._keys[self._active].encrypt(
            key_nonce, dek, self._key_aad(self._active, aad)
        )
        return ".".join(
            (
                _VERSION,
                self._active,
                _b64e(key_nonce + sealed_key),
                _b64e(data_nonce + sealed_value),
            )
        )

    def decrypt(self, sealed: str, aad: bytes) -> bytes:
        """Open a sealed value; raise :class:`DecryptionFailed` if it is not for ``aad``."""
        kid, dek = self._open_key(sealed, aad)
        blob = _b64d(sealed.split(".")[3])
        try:
            return AESGCM(dek).decrypt(blob[:12], blob[12:], aad)
        except InvalidTag as exc:
            raise DecryptionFailed(f"cannot decrypt a value sealed under key {kid}") from exc

    def rotate(self, sealed: str, aad: bytes) -> str:
        """Return ``sealed`` with its data key re-sealed under the active master key."""
        kid, dek = self._open_key(sealed, aad)
        if kid == self._active:
            return sealed
        key_nonce = os.urandom(12)
        resealed = self._keys[self._active].encrypt(
            key_nonce, dek, self._key_aad(self._active, aad)
        )
        parts = sealed.split(".")
        return ".".join((_VERSION, self._active, _b64e(key_nonce + resealed), parts[3]))

    def needs_rotation(self, sealed: str) -> bool:
        """Tell whether ``sealed`` is under a key other than the active one."""
        return kid_of(sealed) != self._active

    def _open_key(self, sealed: str, aad: bytes) -> tuple[str, bytes]:
        parts = sealed.split(".")
        if len(parts) != 4 or parts[0] != _VERSION:
            raise DecryptionFailed("not a sealed value")
        kid = parts[1]
        master = self._keys.get(kid)
        if master is None:
            raise DecryptionFailed(f"master key {kid} is not configured")
        blob = _b64d(parts[2])
        try:
            return kid, master.decrypt(blob[:12], blob[12:], self._key_aad(kid, aad))
        except InvalidTag as exc:
            raise DecryptionFailed(f"cannot decrypt a value sealed under key {kid}") from exc

    @staticmethod
    def _key_aad(kid: str, aad: bytes) -> bytes:
        return b"tether-dek:" + kid.encode() + b":" + aad


def kid_of(sealed: str) -> str:
    """Return the id of the master key a sealed value's data key is sealed under."""
    parts = sealed.split(".")
    if len(parts) != 4 or parts[0] != _VERSION:
        raise DecryptionFailed("not a sealed value")
    return parts[1]


def generate_master_key(kid: str | None = None) -> str:
    """Return a new ``kid:base64key`` entry for ``TETHER_MASTER_KEYS``."""
    kid = kid or f"k{secrets.token_hex(4)}"
    return f"{kid}:{base64.b64encode(os.urandom(32)).decode()}"
