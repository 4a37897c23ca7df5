"""Check customer fields against the workspace's JSON Schema (draft 2020-12)."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from jsonschema import Draft202012Validator
from jsonschema.exceptions import SchemaError, ValidationError
from referencing import Registry
from referencing.exceptions import Unresolvable
from referencing.jsonschema import DRAFT202012

from libs.common.contracts.identity import FieldError
from libs.common.errors import InvalidInput


@dataclass(frozen=True)
class Source:
    """Where checked fields came from, so an error names what the caller should change."""

    owner: str
    """Whose fields they are, as a message's subject (``the customer's fields``)."""
    path: str
    """The fields' path in the caller's input (``fields``, ``settings.testCustomer.fields``)."""


CUSTOMER = Source("the customer's fields", "fields")
TEST_CUSTOMER = Source("the test customer's fields", "settings.testCustomer.fields")


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
    # Nothing is fetched: a $ref must point inside the schema, or checking fields would fail.
    resolver = Registry().resolver_with_root(DRAFT202012.create_resource(schema))
    for where, ref in _refs(schema, "settings.customerFieldsSchema"):
        try:
            resolver.lookup(ref)
        except Unresolvable as exc:
            raise InvalidInput(
                f"customerFieldsSchema refers to {ref!r}, which is not inside it",
                code="invalid_schema",
                details=[{"field": where, "message": "only $refs inside the schema resolve"}],
            ) from exc


def _refs(node: Any, where: str) -> list[tuple[str, str]]:
    """Return (path, value) of every ``$ref`` in a schema."""
    if isinstance(node, dict):
        own = [(f"{where}.$ref", node["$ref"])] if isinstance(node.get("$ref"), str) else []
        return own + [r for k, v in node.items() for r in _refs(v, f"{where}.{k}")]
    if isinstance(node, list):
        return [r for i, v in enumerate(node) for r in _refs(v, f"{where}.{i}")]
    return []


def _missing(err: ValidationError) -> str | None:
    """Return the property a ``required`` error is about (jsonschema says it in words only)."""
    if err.validator != "required" or not isinstance(err.validator_value, list):
        return None
    return next(
        (
            p
            for p in err.validator_value
            if isinstance(p, str) and err.message == f"{p!r} is a required property"
        ),
        None,
    )


def _path(err: ValidationError, base: str) -> str:
    """Return where ``err`` is, ending at the missing property when one is missing."""
    missing = _missing(err)
    parts = [base, *(str(p) for p in err.absolute_path), *([missing] if missing else [])]
    return ".".join(parts)


def _errors(schema: dict[str, Any] | None, fields: dict[str, Any]) -> list[ValidationError]:
    if not schema:
        return []
    found = Draft202012Validator(schema).iter_errors(fields)
    try:
        return sorted(found, key=lambda e: [*map(str, e.absolute_path), _missing(e) or ""])
    except Unresolvable as exc:  # a schema saved before its $refs were checked
        raise InvalidInput(
            "the workspace's customerFieldsSchema has a $ref that does not resolve",
            code="invalid_schema",
            details=[{"field": "settings.customerFieldsSchema"}],
        ) from exc


def field_errors(
    schema: dict[str, Any] | None, fields: dict[str, Any], source: Source = CUSTOMER
) -> list[FieldError]:
    """Return every way ``fields`` fails ``schema`` (none when there is no schema)."""
    return [
        FieldError(field=_path(err, source.path), message=err.message)
        for err in _errors(schema, fields)
    ]


def require_valid(
    schema: dict[str, Any] | None, fields: dict[str, Any], source: Source = CUSTOMER
) -> None:
    """Raise ``invalid_fields`` naming each failing path when ``fields`` fail ``schema``.

    When only required fields are missing, the message says which and where to set them.
    """
    errors = _errors(schema, fields)
    if not errors:
        return
    paths = ", ".join(_path(e, source.path) for e in errors[:5])
    missing = [_missing(e) for e in errors]
    if all(missing):
        names = ", ".join(repr(m) for m in missing[:5])
        message = f"{source.owner} miss {names}: set {paths}"
    else:
        message = f"{source.owner} do not match the workspace's schema: {paths}"
    raise InvalidInput(
        message,
        code="invalid_fields",
        details=[e.model_dump() for e in field_errors(schema, fields, source)],
    )
