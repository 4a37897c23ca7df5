"""Envelope encryption: round trips, row binding, tampering, rotation."""

from __future__ import annotations

import base64
import os
from uuid import uuid4

import pytest

from libs.common.crypto import (
    DecryptionFailed,
    Keyring,
    associated_data,
    generate_master_key,
    kid_of,
)


def test_crypto_round_trip_binds_to_row() -> None:
    ring = Keyring.from_setting(generate_master_key("a"))
    ws, row = uuid4(), uuid4()
    sealed = ring.encrypt(b"refresh-token-123", associated_data(ws, row))
    assert b"refresh-token-123" not in sealed.encode()
    assert ring.decrypt(sealed, associated_data(ws, row)) == b"refresh-token-123"
    with pytest.raises(DecryptionFailed):
        ring.decrypt(sealed, associated_data(ws, uuid4()))
    with pytest.raises(DecryptionFailed):
        ring.decrypt(sealed, associated_data(uuid4(), row))


def test_crypto_detects_tampering() -> None:
    ring = Keyring.from_setting(generate_master_key("a"))
    aad = associated_data("w", "r")
    sealed = ring.encrypt(b"secret", aad)
    v, kid, key, data = sealed.split(".")
    flipped = data[:-2] + ("A" if data[-2] != "A" else "B") + data[-1]
    with pytest.raises(DecryptionFailed):
        ring.decrypt(".".join((v, kid, key, flipped)), aad)
    with pytest.raises(DecryptionFailed):
        ring.decrypt("not-sealed", aad)


def test_crypto_rotate_reseals_under_active_key() -> None:
    old = generate_master_key("old")
    new = generate_master_key("new")
    aad = associated_data("w", "r")
    sealed = Keyring.from_setting(old).encrypt(b"value", aad)
    rotated_ring = Keyring.from_setting(f"{new},{old}")
    assert rotated_ring.needs_rotation(sealed)
    rotated = rotated_ring.rotate(sealed, aad)
    assert rotated.split(".")[1] == "new"
    assert not rotated_ring.needs_rotation(rotated)
    assert rotated_ring.rotate(rotated, aad) == rotated
    # Once rotated, the old key can be retired.
    assert Keyring.from_setting(new).decrypt(rotated, aad) == b"value"
    with pytest.raises(DecryptionFailed, match="not configured"):
        Keyring.from_setting(new).decrypt(sealed, aad)


@pytest.mark.parametrize(
    ("setting", "problem"),
    [
        ("", "at least one"),
        ("nokey", "kid:base64key"),
        ("a:!!!", "not valid base64"),
        (f"a:{base64.b64encode(os.urandom(16)).decode()}", "32 bytes"),
        (f"bad.kid:{base64.b64encode(os.urandom(32)).decode()}", "must be 1-32"),
        (f"{generate_master_key('a')},{generate_master_key('a')}", "unique"),
    ],
    ids=["empty", "no-kid", "bad-base64", "short-key", "bad-kid", "duplicate-kid"],
)
def test_crypto_rejects_bad_master_keys(setting: str, problem: str) -> None:
    with pytest.raises(ValueError, match=problem):
        Keyring.from_setting(setting)


def test_crypto_keyring_names_its_keys_active_first() -> None:
    ring = Keyring.from_setting(f"{generate_master_key('new')},{generate_master_key('old')}")
    assert (ring.active_kid, ring.kids) == ("new", ("new", "old"))
    assert kid_of(ring.encrypt(b"v", b"aad")) == "new"
    with pytest.raises(DecryptionFailed):
        kid_of("not-sealed")
