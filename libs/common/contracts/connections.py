"""Connections's subjects and models."""

from __future__ import annotations

from libs.common.contracts.base import ping_operation

PING = ping_operation("connections")

OPERATIONS = (PING,)
EVENTS = ()
