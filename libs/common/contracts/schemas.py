"""The JSON Schemas the API publishes so the console can build forms instead of raw JSON.

Four read-only catalogues, the same for every workspace, for any authenticated caller:

* ``GET /flow-node-types`` (flows): each node type's ``configSchema``;
* ``GET /flow-trigger-types`` (flows): one item per trigger ``type``;
* ``GET /integration-auth-types`` (connections): one item per ``auth.type``;
* ``GET /action-request-types`` (instances): the request an action makes.

Every schema is a JSON Schema (draft 2020-12, as pydantic writes it) of the value as the API
takes it: keys by alias (camelCase), nested models under ``$defs`` referenced as
``#/$defs/<Name>``, defaults, descriptions, and titles fit for a label ("Action key", not
pydantic's "Actionkey"). Two annotations are added:

* ``"x-tether-expression": true`` on a property says its value (and anything inside it) may
  instead be an expression: ``{"$expr": "<jmespath>"}`` for any value, or a string with
  ``{{ <jmespath> }}`` templates (``libs/common/expressions.py``). The schema describes the
  value once its expressions are resolved, so an expression need not fit it.
* ``"writeOnly": true, "format": "password"`` on a property holding a secret (a name ending
  in ``secret`` or ``password``), so forms render a password input. Schemas hold no values.

In the per-type catalogues (triggers, auth) each item's schema fixes its discriminator as
``"type": {"const": "<type>"}`` (required), so ``{"oneOf": [item.schema, …]}`` is the union.
"""

from __future__ import annotations

import re
import typing
from collections.abc import Iterable, Mapping
from types import MappingProxyType
from typing import Any

from pydantic import BaseModel, Field, TypeAdapter

from libs.common.contracts.base import Operation, Reply, Request

EXPRESSION = "x-tether-expression"
"""The annotation of a property whose value may be an expression (see the module docstring)."""

_ACRONYMS: Mapping[str, str] = MappingProxyType(
    {
        "api": "API",
        "id": "ID",
        "url": "URL",
        "http": "HTTP",
        "https": "HTTPS",
        "pkce": "PKCE",
        "jmespath": "JMESPath",
        "oauth2": "OAuth 2.0",
        "json": "JSON",
    }
)
_SECRET = re.compile(r"(secret|password)$", re.IGNORECASE)


def humanize(name: str) -> str:
    """Return a label for a key or a type name: ``actionKey`` → "Action key", ``url`` → "URL"."""
    spaced = re.sub(r"([a-z0-9])([A-Z])", r"\1 \2", name).replace("_", " ").replace("-", " ")
    words = [_ACRONYMS.get(w.lower(), w.lower()) for w in spaced.split()]
    if not words:
        return name
    first = words[0]
    return " ".join([first[:1].upper() + first[1:], *words[1:]])


def _is_default_title(title: Any, key: str) -> bool:
    """Tell whether pydantic made ``title`` up from the key (``Actionkey`` for ``actionKey``)."""
    return isinstance(title, str) and title.replace(" ", "").lower() == key.replace("_", "").lower()


def _polish(node: Any) -> None:
    """Give properties readable titles and mark secret ones, everywhere in ``node``."""
    if isinstance(node, list):
        for item in node:
            _polish(item)
        return
    if not isinstance(node, dict):
        return
    props = node.get("properties")
    if isinstance(props, dict):
        for key, prop in props.items():
            if isinstance(prop, dict):
                if "title" not in prop or _is_default_title(prop["title"], key):
                    prop["title"] = humanize(key)
                if _SECRET.search(key):
                    prop["writeOnly"] = True
                    prop.setdefault("format", "password")
    if isinstance(node.get("description"), str):
        node["description"] = _plain(node["description"])
    for key, value in node.items():
        if key != "default":
            _polish(value)


def _plain(doc: str) -> str:
    """Return a docstring as hint text: Markdown code spans, one line per paragraph."""
    paragraphs = doc.replace("``", "`").split("\n\n")
    return "\n\n".join(" ".join(p.split()) for p in paragraphs)


def publish(
    tp: Any,
    *,
    title: str | None = None,
    expressions: Iterable[str] = (),
    discriminator: tuple[str, str] | None = None,
) -> dict[str, Any]:
    """Return the published JSON Schema of ``tp`` (a model or any type pydantic validates).

    ``expressions`` names the top-level properties marked ``x-tether-expression``;
    ``discriminator`` (key, value) fixes that property to one required constant.
    The result is a new dict (no part shared with pydantic's caches).
    """
    schema: dict[str, Any] = TypeAdapter(tp).json_schema(by_alias=True, mode="validation")
    _polish(schema)
    props: dict[str, Any] = schema.get("properties", {})
    for key in expressions:
        if key in props:
            props[key][EXPRESSION] = True
    if discriminator is not None:
        key, value = discriminator
        props[key] = {"const": value, "default": value, "title": humanize(key), "type": "string"}
        required = schema.setdefault("required", [])
        if key not in required:
            required.insert(0, key)
    if title is not None:
        schema["title"] = title
    return schema


def describe(model: type[BaseModel]) -> str:
    """Return the first paragraph of a model's docstring, on one line."""
    doc = (model.__doc__ or "").strip().split("\n\n")[0]
    return " ".join(doc.split())


def union_members(union: Any) -> list[type[BaseModel]]:
    """Return the models of a (possibly ``Annotated``) union of models."""
    if typing.get_origin(union) is typing.Annotated:
        union = typing.get_args(union)[0]
    return [m for m in typing.get_args(union) if isinstance(m, type) and issubclass(m, BaseModel)]


def discriminated_items(
    union: Any, key: str, titles: Mapping[str, str], descriptions: Mapping[str, str] | None = None
) -> list[SchemaType]:
    """Return one item per value of ``key`` across the members of ``union``.

    A member whose ``key`` takes several values (``Literal["a", "b"]``) gives one item each.
    ``titles`` names every value (a missing one is humanized); ``descriptions`` overrides
    the member's docstring per value.
    """
    items: list[SchemaType] = []
    for model in union_members(union):
        for value in typing.get_args(model.model_fields[key].annotation):
            item_title = titles.get(value, humanize(value))
            items.append(
                SchemaType(
                    type=value,
                    title=item_title,
                    description=(descriptions or {}).get(value, describe(model)),
                    json_schema=publish(model, title=item_title, discriminator=(key, value)),
                )
            )
    return items


# --- contracts --------------------------------------------------------------------------


class TypeListRequest(Request):
    """List a catalogue of types with their JSON Schemas (the same for every workspace)."""


class NodeTypeInfo(Reply):
    """One node type a flow may use, and the JSON Schema of its ``config``."""

    type: str = Field(description="The node's `type` in a flow definition")
    title: str
    description: str = Field(description="What the node does: config, output, errors")
    config_schema: dict[str, Any] = Field(
        description=(
            "JSON Schema (2020-12) of the node's `config`, keys by alias, nested models in "
            "`$defs`. A property marked `x-tether-expression: true` may hold, in place of its "
            'value or anywhere inside it, an expression: `{"$expr": "<jmespath>"}` or a '
            "string with `{{ <jmespath> }}` templates, evaluated over the run context when "
            "the node runs; the schema describes the value after evaluation."
        )
    )


class NodeTypeList(Reply):
    """Every node type, in the order the console offers them."""

    items: list[NodeTypeInfo]


class SchemaType(Reply):
    """One type of a catalogue: its name, a label, what it is, and its JSON Schema."""

    type: str = Field(description="The value of the discriminating `type` key")
    title: str
    description: str
    json_schema: dict[str, Any] = Field(
        alias="schema",
        description=(
            "JSON Schema (2020-12) of a value of this type, keys by alias, nested models in "
            "`$defs`; `type` is fixed as a required const. Secret fields are marked "
            '`writeOnly` with `format: "password"`.'
        ),
    )


class SchemaTypeList(Reply):
    """Every type of one catalogue."""

    items: list[SchemaType]


FLOW_NODE_TYPES_LIST = Operation(
    "tether.flows.node_types.list",
    TypeListRequest,
    NodeTypeList,
    "List flow node types with their config schemas",
)
FLOW_TRIGGER_TYPES_LIST = Operation(
    "tether.flows.trigger_types.list",
    TypeListRequest,
    SchemaTypeList,
    "List flow trigger types with their schemas",
)
AUTH_TYPES_LIST = Operation(
    "tether.connections.auth_types.list",
    TypeListRequest,
    SchemaTypeList,
    "List integration auth types with their schemas",
)
ACTION_REQUEST_TYPES_LIST = Operation(
    "tether.instances.action_request_types.list",
    TypeListRequest,
    SchemaTypeList,
    "List the request specs an action may make, with their schemas",
)

OPERATIONS_BY_SERVICE: Mapping[str, tuple[Operation[Any, Any], ...]] = MappingProxyType(
    {
        "flows": (FLOW_NODE_TYPES_LIST, FLOW_TRIGGER_TYPES_LIST),
        "connections": (AUTH_TYPES_LIST,),
        "instances": (ACTION_REQUEST_TYPES_LIST,),
    }
)
"""The schema catalogues each service answers (added to its operations by the package)."""
