"""Customisation: applying a merge patch, three-way upgrade conflicts, what a customer may set."""

from __future__ import annotations

from typing import Any

import pytest
from pydantic import ValidationError

from libs.common.contracts import flows as c
from libs.common.errors import Forbidden
from services.flows.customization import apply, conflicts, customer_customization, leaves


def flow(**nodes: dict[str, Any]) -> c.FlowDefinition:
    """Return a definition with these nodes (each a node's JSON)."""
    return c.FlowDefinition.model_validate(
        {"name": "f", "trigger": {"type": "api"}, "nodes": nodes}
    )


def shape(expression: str = "a", **more: Any) -> dict[str, Any]:
    """Return a transform node's JSON."""
    return {"type": "transform", "config": {"expression": expression, **more}}


BASE = flow(shape=shape("a", limit=1), send={"type": "delay", "config": {"seconds": 5}})


def paths(found: list[dict[str, str]]) -> list[str]:
    return [f["path"] for f in found]


# --- leaves -----------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("patch", "expected"),
    [
        ({}, []),
        ({"nodes": {}}, []),
        ({"a": 1}, [(("a",), 1)]),
        ({"a": None}, [(("a",), None)]),
        ({"a": [1, {"b": 2}]}, [(("a",), [1, {"b": 2}])]),  # arrays are replaced whole
        ({"a": {"b": {"c": 1}, "d": None}}, [(("a", "b", "c"), 1), (("a", "d"), None)]),
    ],
)
def test_leaves_lists_every_value_a_patch_sets(patch: Any, expected: Any) -> None:
    assert leaves(patch) == expected


# --- apply ------------------------------------------------------------------------------


def test_apply_without_customisation_returns_the_base() -> None:
    effective, values = apply(BASE, {})
    assert effective == BASE
    assert values == {}


def test_apply_merges_nested_config_and_parameters() -> None:
    effective, values = apply(
        BASE,
        {"nodes": {"shape": {"config": {"expression": "b"}}}, "parameters": {"channel": "x"}},
    )
    assert effective.nodes["shape"].config == {"expression": "b", "limit": 1}
    assert values == {"channel": "x"}


def test_apply_null_deletes_a_node_and_a_config_key() -> None:
    effective, _ = apply(BASE, {"nodes": {"send": None, "shape": {"config": {"limit": None}}}})
    assert list(effective.nodes) == ["shape"]
    assert effective.nodes["shape"].config == {"expression": "a"}


def test_apply_replaces_arrays_whole() -> None:
    base = flow(a={"type": "delay", "config": {"seconds": 1}, "links": [{"to": "b"}]}, b=shape())
    effective, _ = apply(base, {"nodes": {"a": {"links": []}}})
    assert effective.nodes["a"].links == []


def test_apply_leaves_its_inputs_untouched() -> None:
    customization = {"nodes": {"shape": {"config": {"expression": "b"}}}}
    before = BASE.model_dump()
    apply(BASE, customization)
    assert BASE.model_dump() == before
    assert customization == {"nodes": {"shape": {"config": {"expression": "b"}}}}


def test_apply_parameters_that_are_not_an_object_give_no_values() -> None:
    assert apply(BASE, {"parameters": [1, 2]})[1] == {}
    assert apply(BASE, {"parameters": None})[1] == {}


def test_apply_refuses_a_node_the_patch_makes_invalid() -> None:
    with pytest.raises(ValidationError):
        apply(BASE, {"nodes": {"shape": {"type": None}}})


# --- conflicts (three-way upgrade) ------------------------------------------------------


def test_conflicts_none_when_the_revision_changed_something_else() -> None:
    new = flow(shape=shape("a", limit=2), send={"type": "delay", "config": {"seconds": 5}})
    assert conflicts(BASE, new, {"nodes": {"shape": {"config": {"expression": "b"}}}}) == []


def test_conflicts_when_both_changed_the_same_value() -> None:
    new = flow(shape=shape("z", limit=1), send={"type": "delay", "config": {"seconds": 5}})
    found = conflicts(BASE, new, {"nodes": {"shape": {"config": {"expression": "b"}}}})
    assert paths(found) == ["nodes.shape.config.expression"]
    assert found[0]["reason"] == "the new revision changed this value too"


def test_conflicts_none_when_both_changed_it_to_the_same_value() -> None:
    new = flow(shape=shape("b", limit=1), send={"type": "delay", "config": {"seconds": 5}})
    assert conflicts(BASE, new, {"nodes": {"shape": {"config": {"expression": "b"}}}}) == []


def test_conflicts_when_the_revision_removed_a_customised_node() -> None:
    new = flow(shape=shape("a", limit=1))
    found = conflicts(BASE, new, {"nodes": {"send": {"config": {"seconds": 9}}}})
    assert paths(found) == ["nodes.send.config.seconds"]
    assert found[0]["reason"] == "node send was removed by the new revision"


def test_conflicts_none_when_both_removed_a_node() -> None:
    new = flow(shape=shape("a", limit=1))
    assert conflicts(BASE, new, {"nodes": {"send": None}}) == []


def test_conflicts_when_the_customisation_deleted_what_the_revision_changed() -> None:
    new = flow(shape=shape("a", limit=7), send={"type": "delay", "config": {"seconds": 5}})
    found = conflicts(BASE, new, {"nodes": {"shape": {"config": {"limit": None}}}})
    assert paths(found) == ["nodes.shape.config.limit"]


def test_conflicts_when_the_revision_deleted_what_the_customisation_changed() -> None:
    new = flow(shape=shape("a"), send={"type": "delay", "config": {"seconds": 5}})
    found = conflicts(BASE, new, {"nodes": {"shape": {"config": {"limit": 3}}}})
    assert paths(found) == ["nodes.shape.config.limit"]


def test_conflicts_when_the_revision_added_what_the_customisation_also_added() -> None:
    new = flow(
        shape=shape("a", limit=1, extra="r"), send={"type": "delay", "config": {"seconds": 5}}
    )
    found = conflicts(BASE, new, {"nodes": {"shape": {"config": {"extra": "c"}}}})
    assert paths(found) == ["nodes.shape.config.extra"]


def test_conflicts_on_arrays_compare_the_whole_array() -> None:
    old = flow(a={"type": "delay", "config": {"seconds": 1}, "links": [{"to": "b"}]}, b=shape())
    new = flow(
        a={"type": "delay", "config": {"seconds": 1}, "links": [{"to": "b"}, {"to": "c"}]},
        b=shape(),
        c=shape(),
    )
    assert paths(conflicts(old, new, {"nodes": {"a": {"links": []}}})) == ["nodes.a.links"]
    assert conflicts(old, old, {"nodes": {"a": {"links": []}}}) == []


def test_conflicts_a_new_node_by_the_same_name() -> None:
    """A node the customisation added and the revision now adds too conflicts where they differ."""
    new = flow(
        shape=shape("a", limit=1), send={"type": "delay", "config": {"seconds": 5}}, added=shape()
    )
    found = conflicts(BASE, new, {"nodes": {"added": shape("mine")}})
    assert paths(found) == ["nodes.added.config.expression"]  # the same type is no conflict


def test_conflicts_every_conflicting_nested_path_is_listed() -> None:
    new = flow(shape=shape("z", limit=9), send={"type": "delay", "config": {"seconds": 6}})
    customization = {
        "nodes": {
            "shape": {"config": {"expression": "b", "limit": 2}},
            "send": {"config": {"seconds": 7}},
        }
    }
    assert sorted(paths(conflicts(BASE, new, customization))) == [
        "nodes.send.config.seconds",
        "nodes.shape.config.expression",
        "nodes.shape.config.limit",
    ]


def test_conflicts_never_on_parameters() -> None:
    """Parameter values are the customer's own: no revision changes them."""
    assert conflicts(BASE, flow(), {"parameters": {"channel": "x", "n": None}}) == []


def test_conflicts_none_for_an_empty_customisation() -> None:
    assert conflicts(BASE, flow(), {}) == []


# --- what a customer may change ---------------------------------------------------------


def test_customer_customization_sets_parameters_and_keeps_the_rest() -> None:
    current = {"nodes": {"shape": {"config": {"expression": "b"}}}, "parameters": {"a": 1}}
    changed = customer_customization(current, {"parameters": {"b": 2}})
    assert changed == {"nodes": {"shape": {"config": {"expression": "b"}}}, "parameters": {"b": 2}}
    assert current["parameters"] == {"a": 1}


def test_customer_customization_null_parameters_drops_them() -> None:
    assert customer_customization({"parameters": {"a": 1}}, {"parameters": None}) == {}
    assert customer_customization({"nodes": {}}, {}) == {"nodes": {}}


@pytest.mark.parametrize("requested", [{"nodes": {}}, {"parameters": {}, "nodes": None}])
def test_customer_customization_refuses_anything_but_parameters(requested: dict[str, Any]) -> None:
    with pytest.raises(Forbidden) as caught:
        customer_customization({}, requested)
    assert caught.value.code == "customization_forbidden"
