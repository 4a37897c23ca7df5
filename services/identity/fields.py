"""Check customer fields against the workspace's JSON Schema (draft 2020-12)."""

from __future__ import annotations

from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError

from libs.common.contracts.identity import FieldError
from libs.common.errors import InvalidInput


def check_schema(schema: dict[str, Any]) -> None:
    """Refuse a fields schema that is not itself valid JSON Schema."""
    try:
        Draft202012Validator.check_schema(schema)
    except SchemaError as exc:
        where = "/".join(str(p) for p in exc.absolute_path) or "(root)"
        raise InvalidInput(
            f"customerFieldsSchema is not a valid JSON Schema at {where}: {exc.message}",
            code="invalid_schema",
            details=[{"field": f"settings.customerFieldsSchema.{where}", "message": exc.message}],
        ) from exc


def field_errors(schema: dict[str, Any] | None, fields: dict[str, Any]) -> list[FieldError]:
    """Return every way ``fields`` fails ``schema`` (none when there is no schema)."""
    if not schema:
        return []
    validator = Draft202012Validator(schema)
    return [
        FieldError(
            field=".".join(["fields", *(str(p) for p in err.absolute_path)]),
            message=err.message,
        )
        for err in sorted(
            validator.iter_errors(fields), key=lambda e: list(map(str, e.absolute_path))
        )
    ]


def require_valid(schema: dict[str, Any] | None, fields: dict[str, Any]) -> None:
    """Raise ``invalid_fields`` naming each failing path when ``fields`` fail ``schema``."""
    errors = field_errors(schema, fields)
    if errors:
        paths = ", ".join(e.field for e in errors[:5])
        raise InvalidInput(
            f"the customer's fields do not match the workspace's schema: {paths}",
            code="invalid_fields",
            details=[e.model_dump() for e in errors],
        )
