"""The base of every row model of the connections store."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class Row(BaseModel):
    """A row as read: immutable."""

    model_config = ConfigDict(frozen=True)
