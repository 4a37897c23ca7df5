"""What a field mapping's fields are, which types convert, and how a record is mapped.

Pure functions, no I/O. A *field* is a property of a JSON Schema of an object: the app's
fields are ``appSchema.properties``, the external ones a data-source instance's
``fieldsSchema.properties`` (custom fields included). Each has at most one JSON type.

Which types convert (the same both ways, so a field that may feed another on import may be
fed by it on export): equal types; a field without a type and anything; ``string``,
``number`` and ``integer`` among themselves; ``boolean`` and ``string``. ``object`` and
``array`` convert only to themselves, ``boolean`` not to numbers. Whether one *value*
converts is known only when a record is mapped (``"12"`` → 12, ``"twelve"`` fails).

A *plain reference* is an expression that only reads one field (``{"$expr": "email"}``,
``"{{ email }}"``, a quoted identifier for odd names): it is how "external field E feeds
app field A" is written, and what customisation by field choice produces.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

import jmespath
import jmespath.exceptions
from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from libs.common import expressions
from libs.common.contracts import field_mappings as c
from libs.common.contracts.actions import Level
from libs.common.errors import InvalidInput

Problems = list[dict[str, str]]
_IDENTIFIER = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_SCALARS = frozenset({"string", "number", "integer"})
_TEMPLATE = re.compile(r"^\{\{(.*)\}\}$", re.S)


def invalid(problems: Problems) -> InvalidInput:
    """Return the one error that lists every problem (its message names the first field)."""
    first = problems[0]
    return InvalidInput(f"{first['field']}: {first['message']}", details=problems)


# --- fields and types -------------------------------------------------------------------


def schema_type(prop: Any) -> str | None:
    """Return a property's one JSON type (of a ``["x", "null"]`` list, the non-null one)."""
    if not isinstance(prop, dict):
        return None
    kind = prop.get("type")
    if isinstance(kind, list):
        kinds = [k for k in kind if k != "null"]
        kind = kinds[0] if len(kinds) == 1 else None
    return kind if isinstance(kind, str) else None


def fields_of(schema: dict[str, Any] | None) -> dict[str, str | None]:
    """Return a schema's fields with their types, in the schema's order."""
    props = (schema or {}).get("properties")
    if not isinstance(props, dict):
        return {}
    return {str(name): schema_type(prop) for name, prop in props.items()}


def external_fields(schema: dict[str, Any] | None) -> list[c.ExternalField]:
    """Return the fields of a data-source instance's ``fieldsSchema``, by name."""
    props = (schema or {}).get("properties")
    if not isinstance(props, dict):
        return []
    return [
        c.ExternalField(
            name=str(name),
            type=schema_type(prop),
            title=str(prop["title"]) if isinstance(prop, dict) and prop.get("title") else None,
        )
        for name, prop in sorted(props.items())
    ]


def compatible(source: str | None, target: str | None) -> bool:
    """Tell whether a field of type ``source`` may feed one of type ``target``."""
    if source is None or target is None or source == target:
        return True
    if source in _SCALARS and target in _SCALARS:
        return True
    return {source, target} == {"boolean", "string"}


def describe(name: str, kind: str | None) -> str:
    """Return ``name (type)`` for messages."""
    return f"{name} ({kind or 'any type'})"


def convert(value: Any, target: str | None, field: str) -> Any:
    """Return ``value`` as JSON type ``target``; InvalidInput naming ``field`` when it cannot."""
    if value is None or target is None:
        return value
    converted = _convert(value, target)
    if converted is _FAILED:
        shown = json.dumps(value)[:80]
        raise InvalidInput(
            f"{field}: cannot convert {shown} to {target}",
            code="conversion_failed",
            details=[{"field": field, "message": f"cannot convert {shown} to {target}"}],
        )
    return converted


_FAILED = object()


def _convert(value: Any, target: str) -> Any:
    is_number = isinstance(value, int | float) and not isinstance(value, bool)
    if target == "string":
        if isinstance(value, str):
            return value
        if isinstance(value, bool):
            return "true" if value else "false"
        return json.dumps(value) if is_number else _FAILED
    if target in ("number", "integer"):
        number: Any = value if is_number else _parse_number(value)
        if number is _FAILED or (isinstance(number, float) and not math.isfinite(number)):
            return _FAILED
        if target == "integer":
            if isinstance(number, float) and not number.is_integer():
                return _FAILED
            return int(number)
        return number
    if target == "boolean":
        if isinstance(value, bool):
            return value
        if isinstance(value, str) and value.strip().lower() in ("true", "false"):
            return value.strip().lower() == "true"
        return _FAILED
    if target == "object":
        return value if isinstance(value, dict) else _FAILED
    if target == "array":
        return value if isinstance(value, list) else _FAILED
    return value


def _parse_number(value: Any) -> Any:
    if not isinstance(value, str):
        return _FAILED
    try:
        return int(value.strip())
    except ValueError:
        pass
    try:
        return float(value.strip())
    except ValueError:
        return _FAILED


# --- plain references -------------------------------------------------------------------


def reference(value: Any) -> str | None:
    """Return the one field a plain reference reads, or None for any other value."""
    if isinstance(value, dict) and set(value) == {expressions.EXPR_KEY}:
        text = value[expressions.EXPR_KEY]
    elif isinstance(value, str) and (found := _TEMPLATE.match(value.strip())):
        text = found.group(1)
    else:
        return None
    if not isinstance(text, str):
        return None
    try:
        parsed = jmespath.compile(text).parsed
    except jmespath.exceptions.JMESPathError:
        return None
    if parsed.get("type") == "field":
        return str(parsed["value"])
    return None


def ref(name: str) -> dict[str, str]:
    """Return the plain reference to field ``name``."""
    return {expressions.EXPR_KEY: name if _IDENTIFIER.match(name) else json.dumps(name)}


# --- definitions ------------------------------------------------------------------------


def scope_problems(level: Level, integration_key: str | None, customer_id: str | None) -> Problems:
    """Return what is wrong with a level and the integration and customer it names."""
    if level == "universal" and (integration_key or customer_id):
        return [
            {
                "field": "level",
                "message": "a universal field mapping names no integration or customer",
            }
        ]
    if level == "app" and (not integration_key or customer_id):
        return [
            {
                "field": "integrationKey",
                "message": "an app-level field mapping names one integration and no customer",
            }
        ]
    if level == "customer" and not customer_id:
        return [
            {"field": "customerId", "message": "a customer-level field mapping names its customer"}
        ]
    return []


def definition_problems(definition: c.FieldMappingDefinition) -> Problems:
    """Return every problem of a definition (its schema, fields and expressions) at once."""
    found: Problems = []
    try:
        Draft202012Validator.check_schema(definition.app_schema)
    except SchemaError as exc:
        return [{"field": "appSchema", "message": f"not a valid JSON Schema: {exc.message}"}]
    props = definition.app_schema.get("properties")
    if not isinstance(props, dict) or not props:
        return [{"field": "appSchema.properties", "message": "name the app fields (an object)"}]
    app = fields_of(definition.app_schema)
    for name in definition.import_value:
        if name not in app:
            found.append(
                {"field": f"importValue.{name}", "message": f"{name} is not a field of appSchema"}
            )
    found += expressions.check(definition.import_value, "importValue")
    found += expressions.check(definition.export_value, "exportValue")
    for name, value in definition.export_value.items():
        source = reference(value)
        if source is not None and source not in app:
            found.append(
                {
                    "field": f"exportValue.{name}",
                    "message": f"{source} is not a field of appSchema",
                }
            )
    return found


# --- mapping one record -----------------------------------------------------------------


def map_record(
    mapping: dict[str, Any], types: dict[str, str | None], record: dict[str, Any], part: str
) -> dict[str, Any]:
    """Return ``record`` mapped: each key of ``mapping`` → its expression over ``record``,
    converted to the key's type. Null values are left out. Raises InvalidInput naming
    ``<part>.<key>`` when an expression fails or a value cannot convert."""
    output: dict[str, Any] = {}
    for key, expression in mapping.items():
        field = expressions.join(part, key)
        value = convert(expressions.resolve(expression, record, field), types.get(key), field)
        if value is not None:
            output[key] = value
    return output
