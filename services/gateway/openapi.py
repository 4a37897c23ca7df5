"""Build the OpenAPI 3.1 document from the routing table and the pydantic contracts."""

from __future__ import annotations

from typing import Any

from libs.common.runtime import tether_version
from services.gateway.routes import Auth, Route

_ERROR = {"$ref": "#/components/schemas/Error"}
_ERROR_SCHEMA = {
    "type": "object",
    "required": ["error"],
    "properties": {
        "error": {
            "type": "object",
            "required": ["code", "message"],
            "properties": {
                "code": {"type": "string"},
                "message": {"type": "string"},
                "details": {},
                "requestId": {
                    "type": "string",
                    "description": "The request's id (X-Request-Id), the trace id when traced",
                },
            },
        }
    },
}


def _schema(model: type[Any], mode: str, components: dict[str, Any]) -> dict[str, Any]:
    schema: dict[str, Any] = model.model_json_schema(
        by_alias=True, ref_template="#/components/schemas/{model}", mode=mode
    )
    components.update(schema.pop("$defs", {}))
    return schema


def _param(name: str, where: str, schema: dict[str, Any], required: bool) -> dict[str, Any]:
    """Describe one path or query parameter.

    A URL has no null: an optional field is a parameter left out, so its ``null`` branch
    is dropped (a fuzzer would otherwise send the text ``null``, or nothing it could mean).
    """
    options = schema.get("anyOf")
    if isinstance(options, list):
        kept = [o for o in options if o != {"type": "null"}]
        if len(kept) != len(options):
            rest = {k: v for k, v in schema.items() if k not in ("anyOf", "default")}
            schema = {**rest, **kept[0]} if len(kept) == 1 else {**rest, "anyOf": kept}
    return {"name": name, "in": where, "required": required, "schema": schema}


# What each kind of non-JSON route takes as its body (the contract wraps it, not mirrors it).
_RAW_BODIES: dict[str, tuple[str, dict[str, Any]]] = {
    "page": (
        "application/x-www-form-urlencoded",
        {"type": "object", "additionalProperties": {"type": "string"}},
    ),
    "webhook": ("application/json", {}),
    "proxy": ("application/octet-stream", {"type": "string", "format": "binary"}),
}


def _names(route: Route) -> dict[str, Any]:
    """Return what names an operation: its id, summary and tag, and the subject behind it."""
    return {
        "operationId": route.op.subject.removeprefix("tether.").replace(".", "_")
        + f"_{route.method.lower()}",
        "summary": route.op.summary,
        "tags": [route.tag],
        "x-nats-subject": route.op.subject,
    }


def _inputs(
    route: Route, components: dict[str, Any]
) -> tuple[dict[str, Any], list[str], list[dict[str, Any]]]:
    """Return the request's properties and required names (less ``ctx``) and its path parameters.

    The path parameters are taken out of the properties: what is left goes in the query or
    the body.
    """
    request = _schema(route.op.request, "validation", components)
    props = {k: v for k, v in request.get("properties", {}).items() if k != "ctx"}
    required = [r for r in request.get("required", []) if r != "ctx"]
    params = [
        _param(p, "path", props.pop(p, {"type": "string"}), required=True)
        for p in route.path_params
    ]
    return props, required, params


def _raw_operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    """Describe a browser page, the proxy or an inbound webhook: their bodies are not contracts."""
    props, _, params = _inputs(route, components)
    if route.kind == "page":  # pages read the query (GET) beside the form (POST)
        params += [
            _param(name, "query", schema, required=False)
            for name, schema in props.items()
            if name != "form"
        ]
    media = {"page": "text/html", "webhook": "application/json"}.get(route.kind, "*/*")
    op: dict[str, Any] = {
        **_names(route),
        "parameters": params,
        "responses": {
            "default": {"description": "The page, or the app's answer", "content": {media: {}}}
        },
    }
    if route.takes_body:
        body_media, body_schema = _RAW_BODIES[route.kind]
        op["requestBody"] = {"required": False, "content": {body_media: {"schema": body_schema}}}
    if route.auth is not Auth.PUBLIC:
        op["security"] = [{"bearer": []}]
    return op


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    if route.kind != "json":
        return _raw_operation(route, components)
    props, required, params = _inputs(route, components)
    op: dict[str, Any] = {
        **_names(route),
        "responses": {
            "default": {
                "description": "Error",
                "content": {"application/json": {"schema": _ERROR}},
            },
        },
    }
    if route.takes_body:
        body = {"type": "object", "properties": props, "additionalProperties": False}
        body_required = [r for r in required if r in props]
        if body_required:
            body["required"] = body_required
        op["requestBody"] = {
            "required": bool(body_required),
            "content": {"application/json": {"schema": body}},
        }
    else:
        params += [
            _param(name, "query", schema, required=name in required)
            for name, schema in props.items()
        ]
    if params:
        op["parameters"] = params
    if route.status == 204:
        op["responses"][str(route.status)] = {"description": "Done"}
    else:
        reply = _schema(route.op.reply, "serialization", components)
        name = route.op.reply.__name__
        components[name] = reply
        op["responses"][str(route.status)] = {
            "description": "OK",
            "content": {"application/json": {"schema": {"$ref": f"#/components/schemas/{name}"}}},
        }
    if route.auth is not Auth.PUBLIC:
        op["security"] = [{"bearer": []}]
        op["x-tether-auth"] = route.auth.value
    return op


def build_openapi(
    routes: tuple[Route, ...], extra_paths: dict[str, Any] | None = None
) -> dict[str, Any]:
    """Return the OpenAPI document of ``routes``."""
    components: dict[str, Any] = {"Error": _ERROR_SCHEMA}
    paths: dict[str, Any] = dict(extra_paths or {})
    for route in routes:
        paths.setdefault(route.openapi_path, {})[route.method.lower()] = _operation(
            route, components
        )
    return {
        "openapi": "3.1.0",
        "info": {
            "title": "Tether API",
            "version": tether_version(),
            "description": "Embedded integration engine: customers, connections, deployments, flows.",
        },
        "paths": paths,
        "components": {
            "schemas": components,
            "securitySchemes": {
                "bearer": {"type": "http", "scheme": "bearer", "bearerFormat": "JWT"}
            },
        },
    }
