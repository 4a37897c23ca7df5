"""Describe the contracts as documents: JSON Schemas per subject (snapshots), AsyncAPI 3.0."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel

from libs.common.contracts import (
    ALL_EVENTS,
    ALL_OPERATIONS,
    SERVICE_CONTRACTS,
    service_operations,
)


def _schema(model: type[BaseModel], mode: str) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(by_alias=True, mode=mode)  # type: ignore[arg-type]
    return schema


def subject_schemas() -> dict[str, dict[str, Any]]:
    """Return, per subject, the JSON Schemas of its request and reply (or its event)."""
    out: dict[str, dict[str, Any]] = {}
    for op in ALL_OPERATIONS:
        out[op.subject] = {
            "kind": "request-reply",
            "request": _schema(op.request, "validation"),
            "reply": _schema(op.reply, "serialization"),
        }
    for ev in ALL_EVENTS:
        out[ev.subject] = {"kind": "event", "event": _schema(ev.model, "serialization")}
    return out


def asyncapi(version: str) -> dict[str, Any]:
    """Return an AsyncAPI 3.0 document of every NATS subject Tether speaks."""
    channels: dict[str, Any] = {}
    operations: dict[str, Any] = {}
    messages: dict[str, Any] = {}

    def message(model: type[BaseModel], mode: str) -> dict[str, str]:
        name = model.__name__
        messages.setdefault(
            name, {"name": name, "contentType": "application/json", "payload": _schema(model, mode)}
        )
        return {"$ref": f"#/components/messages/{name}"}

    for module_name, module in SERVICE_CONTRACTS.items():
        for op in service_operations(module_name):
            cid = op.subject.replace(".", "_")
            channels[cid] = {
                "address": op.subject,
                "messages": {"request": message(op.request, "validation")},
                "description": op.summary,
            }
            reply_id = f"{cid}_reply"
            channels[reply_id] = {
                "address": None,
                "messages": {"reply": message(op.reply, "serialization")},
            }
            operations[cid] = {
                "action": "receive",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": op.summary,
                "x-service": module_name,
                "reply": {"channel": {"$ref": f"#/channels/{reply_id}"}},
            }
        for ev in module.EVENTS:
            cid = ev.subject.replace(".", "_")
            channels[cid] = {
                "address": ev.subject,
                "messages": {"event": message(ev.model, "serialization")},
            }
            operations[cid] = {
                "action": "send",
                "channel": {"$ref": f"#/channels/{cid}"},
                "summary": f"{module_name} emits {'.'.join(ev.subject.split('.')[3:])} (JetStream TETHER_EVENTS)",
                "x-service": module_name,
            }
    return {
        "asyncapi": "3.0.0",
        "info": {
            "title": "Tether services",
            "version": version,
            "description": "NATS subjects between Tether's services",
        },
        "defaultContentType": "application/json",
        "channels": channels,
        "operations": operations,
        "components": {"messages": messages},
    }
