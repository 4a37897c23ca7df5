"""Flows tests reuse the instances fixtures: the ``crm`` integration at a fake app."""

from __future__ import annotations

from typing import Any

from tests.flows.runs_stack import RUN_OPTIONS, RunsEnv, runs_env, runs_stack
from tests.instances.conftest import crm, fake_app

__all__ = ["RUN_OPTIONS", "RunsEnv", "crm", "fake_app", "flow_body", "runs_env", "runs_stack"]


def flow_body(key: str, level: str = "universal", **overrides: Any) -> dict[str, Any]:
    """Return a small valid flow: api trigger → transform → http-request."""
    return {
        "key": key,
        "level": level,
        "name": f"Flow {key}",
        "trigger": {"type": "api"},
        "nodes": {
            "shape": {
                "type": "transform",
                "config": {"expression": "{email: contact.email}"},
                "links": [{"to": "send"}],
            },
            "send": {
                "type": "http-request",
                "config": {"url": "https://hooks.example/in", "method": "POST"},
            },
        },
        "parameters": {
            "type": "object",
            "properties": {"channel": {"type": "string", "minLength": 1}},
        },
        **overrides,
    }
