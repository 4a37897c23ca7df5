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


def _raw_operation(route: Route) -> dict[str, Any]:
    """Describe a browser page or the proxy, whose bodies are not JSON contracts."""
    params = [
        {"name": p, "in": "path", "required": True, "schema": {"type": "string"}}
        for p in route.path_params
    ]
    media = {"page": "text/html", "webhook": "application/json"}.get(route.kind, "*/*")
    op: dict[str, Any] = {
        "operationId": route.op.subject.removeprefix("tether.").replace(".", "_")
        + f"_{route.method.lower()}",
        "summary": route.summary or route.op.summary,
        "tags": [route.tag],
        "x-nats-subject": route.op.subject,
        "parameters": params,
        "responses": {
            "default": {"description": "The page, or the app's answer", "content": {media: {}}}
        },
    }
    if route.auth is not Auth.PUBLIC:
        op["security"] = [{"bearer": []}]
    return op


def _operation(route: Route, components: dict[str, Any]) -> dict[str, Any]:
    if route.kind != "json":
        return _raw_operation(route)
    request = _schema(route.op.request, "validation", components)
    props = {k: v for k, v in request.get("properties", {}).items() if k != "ctx"}
    required = [r for r in request.get("required", []) if r != "ctx"]
    params: list[dict[str, Any]] = [
        {"name": p, "in": "path", "required": True, "schema": props.pop(p, {"type": "string"})}
        for p in route.path_params
    ]
    op: dict[str, Any] = {
        "operationId": route.op.subject.removeprefix("tether.").replace(".", "_")
        + f"_{route.method.lower()}",
        "summary": route.summary or route.op.summary,
        "tags": [route.tag],
        "x-nats-subject": route.op.subject,
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
            {"name": name, "in": "query", "required": name in required, "schema": schema}
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
