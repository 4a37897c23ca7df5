"""The shared pieces of customisation: the revision cache and what an upgrade answers."""

from __future__ import annotations

from typing import Any

import pytest

from libs.common.customization import Effective, parameter_problems, require_upgradable
from libs.common.errors import Conflict, InvalidInput


def apply(
    base: dict[str, Any], customization: dict[str, Any]
) -> tuple[dict[str, Any], dict[str, Any]]:
    """Return a toy effective definition (the base with the patch on top) and its values."""
    return {**base, **customization}, dict(customization.get("parameters", {}))


async def test_effective_reads_a_revision_once_and_applies_each_customisation_once() -> None:
    reads = 0

    async def load() -> dict[str, Any]:
        nonlocal reads
        reads += 1
        return {"name": "base"}

    cache: Effective[tuple[str, int], dict[str, Any]] = Effective(apply)
    first = await cache.effective(("flow", 1), {"parameters": {"a": 1}}, load)
    again = await cache.effective(("flow", 1), {"parameters": {"a": 1}}, load)
    other = await cache.effective(("flow", 1), {}, load)
    assert first is again
    assert first == ({"name": "base", "parameters": {"a": 1}}, {"a": 1})
    assert other == ({"name": "base"}, {})
    assert reads == 1


def test_require_upgradable_lists_conflicts_without_checking() -> None:
    checked: list[bool] = []
    found = [{"path": "nodes.a", "reason": "the new revision changed this value too"}]
    with pytest.raises(Conflict) as raised:
        require_upgradable(3, found, lambda: checked.append(True))
    assert raised.value.code == "upgrade_conflict"
    assert raised.value.message == "the customisation conflicts with revision 3 at nodes.a"
    assert raised.value.details == found
    assert checked == []


def test_require_upgradable_turns_check_problems_into_conflicts() -> None:
    def check() -> None:
        raise InvalidInput("x", details=[{"field": "customization.parameters", "message": "bad"}])

    with pytest.raises(Conflict) as raised:
        require_upgradable(2, [], check)
    assert raised.value.details == [{"path": "customization.parameters", "reason": "bad"}]
    require_upgradable(2, [], lambda: None)  # nothing conflicts, the check passes: no error


def test_parameter_problems_name_the_value() -> None:
    schema = {"type": "object", "properties": {"n": {"type": "integer"}}}
    assert parameter_problems(schema, {"n": "x"}) == [
        {"field": "customization.parameters.n", "message": "'x' is not of type 'integer'"}
    ]
