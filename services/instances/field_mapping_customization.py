"""A field mapping's customisable document, on top of the one customisation mechanism.

The mechanism (merge patch, three-way upgrade) is ``libs/common/customization.py``, shared
with flow and action instances. What of a field mapping an instance may customise:
``{importValue, exportValue}`` (its appSchema, name and autoDeploy are not customisable).

Customers customise by *field choice* (:func:`choose`): "external field E feeds app field
A" becomes, in the patch, ``importValue.A = E`` and ``exportValue.E = A`` (plain
references), and the external field A used to feed on export stops being written from
it. Choosing ``null`` forgets what the customisation said about A (the definition's
mapping applies again). Admins may also send a whole patch.

Every entry a patch sets is checked against both schemas when it is written
(:func:`entry_problems`: unknown app or external field, types that cannot convert); when
the connection's field schema changes later, the entries whose external field is gone are
the instance's problems (:func:`broken`).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any

from libs.common import customization as common
from libs.common import expressions
from libs.common.contracts import field_mappings as c
from libs.common.errors import InvalidInput
from services.instances import field_mapping_rules as rules

IMPORT = "importValue"
EXPORT = "exportValue"
PARTS = (IMPORT, EXPORT)
COLLECTIONS = {IMPORT: "app field", EXPORT: "external field"}
Entry = tuple[str, str, Any]
"""(part, key, value) of one entry a patch sets (value None: removed)."""


def document(definition: c.FieldMappingDefinition) -> dict[str, Any]:
    """Return the customisable part of a definition."""
    return {IMPORT: definition.import_value, EXPORT: definition.export_value}


def apply(
    definition: c.FieldMappingDefinition, customization: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return the effective (importValue, exportValue).

    Raises InvalidInput naming ``customization.<part>`` when the patch reaches outside the
    document or leaves a part that is not an object.
    """
    unknown = sorted(set(customization) - set(PARTS))
    if unknown:
        raise rules.invalid(
            [{"field": f"customization.{unknown[0]}", "message": "not customisable"}]
        )
    merged = common.merge(document(definition), customization)
    parts = []
    for part in PARTS:
        value = merged.get(part, {})
        if not isinstance(value, dict):
            raise rules.invalid(
                [{"field": f"customization.{part}", "message": "must be an object"}]
            )
        parts.append(value)
    return parts[0], parts[1]


def entries(customization: dict[str, Any]) -> Iterator[Entry]:
    """Yield every entry of the two parts a patch sets or removes."""
    for part in PARTS:
        values = customization.get(part)
        if isinstance(values, dict):
            for key, value in values.items():
                yield part, str(key), value


def choose(
    definition: c.FieldMappingDefinition,
    customization: dict[str, Any],
    choices: dict[str, str | None],
) -> dict[str, Any]:
    """Return ``customization`` with each app field fed by the external field chosen for it."""
    base = document(definition)
    patch = {part: dict(customization.get(part) or {}) for part in PARTS}
    for app_field, external in choices.items():
        imports, exports = patch[IMPORT], patch[EXPORT]
        imports.pop(app_field, None)
        for key, value in list(exports.items()):
            fed_by = rules.reference(base[EXPORT].get(key) if value is None else value)
            if fed_by == app_field:
                del exports[key]
        if external is None:
            continue
        if rules.reference(base[IMPORT].get(app_field)) != external:
            imports[app_field] = rules.ref(external)
        for key, value in common.merge(base[EXPORT], exports).items():
            if key != external and rules.reference(value) == app_field:
                exports[key] = None
        if rules.reference(base[EXPORT].get(external)) != app_field:
            exports[external] = rules.ref(app_field)
    changed = {k: v for k, v in customization.items() if k not in PARTS}
    changed.update({part: values for part, values in patch.items() if values})
    return changed


def customized_fields(customization: dict[str, Any]) -> set[str]:
    """Return the app fields the customisation changes (on import, or as an export's source)."""
    found: set[str] = set()
    for part, key, value in entries(customization):
        if part == IMPORT:
            found.add(key)
        elif (source := rules.reference(value)) is not None:
            found.add(source)
    return found


def entry_problems(
    changed: list[Entry],
    app_schema: dict[str, Any],
    fields_schema: dict[str, Any] | None,
    *,
    by_field: bool,
) -> rules.Problems:
    """Return what is wrong with the entries a patch sets, against both schemas.

    ``by_field``: name problems ``fields.<appField>`` (a field choice), else
    ``customization.<part>.<key>``. Without a fetched schema, external fields are not checked.
    """
    app = rules.fields_of(app_schema)
    external = rules.fields_of(fields_schema) if fields_schema is not None else None
    found: rules.Problems = []
    for part, key, value in changed:
        if value is None:
            continue
        app_field: str | None
        external_field: str | None
        if part == IMPORT:
            app_field, external_field = key, rules.reference(value)
        else:
            app_field, external_field = rules.reference(value), key
        where = f"fields.{app_field}" if by_field and app_field else f"customization.{part}.{key}"
        problems = expressions.check(value, where)
        if app_field is not None and app_field not in app:
            problems.append({"field": where, "message": f"{app_field} is not a field of appSchema"})
        if external is not None and external_field is not None:
            if external_field not in external:
                problems.append(
                    {"field": where, "message": f"unknown external field {external_field}"}
                )
            elif app_field in app:
                assert app_field is not None
                source_type, target_type = (
                    (external[external_field], app[app_field])
                    if part == IMPORT
                    else (app[app_field], external[external_field])
                )
                if not rules.compatible(source_type, target_type):
                    src, dst = (
                        (external_field, app_field)
                        if part == IMPORT
                        else (app_field, external_field)
                    )
                    problems.append(
                        {
                            "field": where,
                            "message": f"{rules.describe(src, source_type)} cannot convert to"
                            f" {rules.describe(dst, target_type)}",
                        }
                    )
        named = {p["field"] for p in found}
        found += [p for p in problems if p["field"] not in named]  # the first problem of each
    return found


def changed_entries(before: dict[str, Any], after: dict[str, Any]) -> list[Entry]:
    """Return the entries ``after`` sets differently from ``before``."""
    old = {(part, key): value for part, key, value in entries(before)}
    return [
        (part, key, value)
        for part, key, value in entries(after)
        if old.get((part, key), object()) != value
    ]


def broken(
    customization: dict[str, Any], fields_schema: dict[str, Any] | None
) -> list[c.FieldMappingProblem]:
    """Return the customised entries whose external field the schema no longer has."""
    if fields_schema is None:
        return []
    external = rules.fields_of(fields_schema)
    found: list[c.FieldMappingProblem] = []
    for part, key, value in entries(customization):
        if value is None:
            continue
        app_field, external_field = (
            (key, rules.reference(value)) if part == IMPORT else (rules.reference(value), key)
        )
        if external_field is None or external_field in external:
            continue
        problem = c.FieldMappingProblem(
            app_field=app_field,
            external_field=external_field,
            message=f"external field {external_field} no longer exists",
        )
        if problem not in found:
            found.append(problem)
    return found


def conflicts(
    old: c.FieldMappingDefinition, new: c.FieldMappingDefinition, customization: dict[str, Any]
) -> list[dict[str, str]]:
    """Return the places where the customisation and the new revision disagree."""
    return common.conflicts(document(old), document(new), customization, COLLECTIONS)


def check(
    definition: c.FieldMappingDefinition,
    customization: dict[str, Any],
    changed: list[Entry],
    fields_schema: dict[str, Any] | None,
    *,
    by_field: bool,
) -> None:
    """Refuse a customisation that does not apply or whose changed entries do not fit."""
    apply(definition, customization)
    problems = entry_problems(changed, definition.app_schema, fields_schema, by_field=by_field)
    if problems:
        raise InvalidInput(
            f"{problems[0]['field']}: {problems[0]['message']}",
            code="invalid_mapping",
            details=problems,
        )
