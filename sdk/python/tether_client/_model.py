"""The base of every model: forward-compatible and Pythonic."""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class TetherModel(BaseModel):
    """A model of the API's JSON.

    Fields are snake_case in Python and camelCase on the wire (both accepted on input);
    fields the API adds later are kept (``extra="allow"``), so a newer server never
    breaks an older client.
    """

    model_config = ConfigDict(extra="allow", populate_by_name=True, protected_namespaces=())
