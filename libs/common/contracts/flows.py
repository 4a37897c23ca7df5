"""Flows's subjects and models."""

from __future__ import annotations

from libs.common.contracts.base import ping_operation

PING = ping_operation("flows")

OPERATIONS = (PING,)
EVENTS = ()
