"""An action's customisable document, on top of the one customisation mechanism.

The mechanism (merge patch, three-way upgrade, what a customer may set) is
``libs/common/customization.py``, shared with flow instances. What of an action an
instance may customise: ``{request, implementations, outputMapping, inputSchema,
parameters}`` — ``parameters`` holding the instance's parameter values (the action's
``parameters`` schema, its name and autoDeploy are not customisable). An implementation
the customisation reaches into must still exist in a new revision.
"""

from __future__ import annotations

from typing import Any

from pydantic import ValidationError

from libs.common import customization as common
from libs.common.contracts import actions as c
from libs.common.errors import InvalidInput

PARTS = {
    "request": "request",
    "implementations": "implementations",
    "outputMapping": "output_mapping",
    "inputSchema": "input_schema",
}
"""The customisable parts of a definition: document key → definition field."""
KEYS = frozenset({*PARTS, common.PARAMETERS})
COLLECTIONS = {"implementations": "implementation"}


def document(definition: c.ActionDefinition) -> dict[str, Any]:
    """Return the customisable part of a definition (camelCase JSON)."""
    dumped = definition.model_dump(mode="json", include=set(PARTS.values()), exclude_none=True)
    return {**dumped, common.PARAMETERS: {}}


def apply(
    definition: c.ActionDefinition, customization: dict[str, Any]
) -> tuple[c.ActionDefinition, dict[str, Any]]:
    """Return the effective definition and the parameter values (inputs untouched).

    Raises InvalidInput naming ``customization`` when the patch reaches outside the
    document or leaves a part that is not a valid one.
    """
    unknown = sorted(set(customization) - KEYS)
    if unknown:
        raise InvalidInput(
            f"customization.{unknown[0]}: not customisable",
            details=[{"field": f"customization.{unknown[0]}", "message": "not customisable"}],
        )
    merged = common.merge(document(definition), customization)
    parts = {field: merged.get(key) for key, field in PARTS.items()}
    base = definition.model_dump(by_alias=False, exclude=set(PARTS.values()))
    try:
        effective = c.ActionDefinition.model_validate({**base, **parts})
    except ValidationError as exc:
        back = {field: key for key, field in PARTS.items()}
        problems = [
            {
                "field": ".".join(
                    ["customization", back.get(str(e["loc"][0]), str(e["loc"][0]))]
                    + [str(p) for p in e["loc"][1:]]
                ),
                "message": e["msg"],
            }
            for e in exc.errors(include_url=False, include_input=False)
        ]
        first = problems[0]
        raise InvalidInput(f"{first['field']}: {first['message']}", details=problems) from exc
    return effective, common.parameter_values(merged)


def conflicts(
    old: c.ActionDefinition, new: c.ActionDefinition, customization: dict[str, Any]
) -> list[dict[str, str]]:
    """Return the places where the customisation and the new revision disagree."""
    return common.conflicts(document(old), document(new), customization, COLLECTIONS)
