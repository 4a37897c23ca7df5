"""The one expression language: ``$expr`` objects and ``{{ }}`` templates over JMESPath."""

from __future__ import annotations

from typing import Any

import pytest

from libs.common.errors import InvalidInput
from libs.common.expressions import (
    ExpressionError,
    check,
    is_expression,
    resolve,
    search,
    truthy,
)

SCOPE: dict[str, Any] = {
    "input": {
        "name": "Ada",
        "count": 3,
        "ratio": 1.5,
        "vip": True,
        "none": None,
        "tags": ["a", "b"],
        "contact": {"email": "ada@example.com", "phones": [{"n": "1"}, {"n": "2"}]},
    },
    "nodes": {"shape": {"id": "x-1"}},
}


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("{{ input.name }}", "Ada"),
        ("{{input.count}}", 3),
        ("{{ input.ratio }}", 1.5),
        ("{{ input.vip }}", True),
        ("{{ input.none }}", None),
        ("{{ input.missing }}", None),
        ("{{ input.tags }}", ["a", "b"]),
        ("{{ input.contact.phones[].n }}", ["1", "2"]),
        ("{{ {id: nodes.shape.id, n: input.count} }}", {"id": "x-1", "n": 3}),
        ("{{ length(input.tags) }}", 2),
    ],
)
def test_resolve_whole_string_template_gives_the_raw_value(template: str, expected: Any) -> None:
    assert resolve(template, SCOPE) == expected


@pytest.mark.parametrize(
    ("template", "expected"),
    [
        ("Hello {{ input.name }}!", "Hello Ada!"),
        ("n={{ input.count }} r={{ input.ratio }}", "n=3 r=1.5"),
        ("vip={{ input.vip }}", "vip=true"),
        ("none=[{{ input.none }}]", "none=[]"),
        ("tags={{ input.tags }}", 'tags=["a","b"]'),
        ("c={{ input.contact.phones[0] }}", 'c={"n":"1"}'),
        (" {{ input.name }}", " Ada"),
        ("{{ input.name }}{{ input.count }}", "Ada3"),
        ("no template at all", "no template at all"),
        ("single { braces } stay", "single { braces } stay"),
        ('/users/{{ input.name }}/x?q={{ `"é"` }}', "/users/Ada/x?q=é"),
    ],
)
def test_resolve_embedded_templates_interpolate_text(template: str, expected: str) -> None:
    assert resolve(template, SCOPE) == expected


def test_resolve_walks_nested_lists_and_dicts_and_keeps_keys_literal() -> None:
    value: dict[str, Any] = {
        "{{ input.name }}": "key stays literal",
        "list": [
            1,
            "{{ input.count }}",
            {"$expr": "input.tags[0]"},
            [{"deep": "x{{ input.vip }}"}],
        ],
        "obj": {"$expr": "input.contact"},
        "literal": {"n": None, "b": False, "f": 2.5},
    }
    out = resolve(value, SCOPE)
    assert out == {
        "{{ input.name }}": "key stays literal",
        "list": [1, 3, "a", [{"deep": "xtrue"}]],
        "obj": SCOPE["input"]["contact"],
        "literal": {"n": None, "b": False, "f": 2.5},
    }
    assert value["list"][1] == "{{ input.count }}"  # the value given is not changed


def test_resolve_expr_object_gives_any_json_type() -> None:
    assert resolve({"$expr": "input.count"}, SCOPE) == 3
    assert resolve({"$expr": "input.none"}, SCOPE) is None
    assert resolve({"$expr": '`[1, {"a": null}]`'}, SCOPE) == [1, {"a": None}]
    assert resolve([{"$expr": "input.vip"}], SCOPE) == [True]


def test_resolve_error_names_the_json_path() -> None:
    value = {"headers": {"X-A": "ok", "X-B": ["fine", "{{ abs(input.name) }}"]}}
    with pytest.raises(ExpressionError) as info:
        resolve(value, SCOPE, "config")
    assert info.value.field == "config.headers.X-B.1"
    assert "abs()" in info.value.reason
    assert info.value.message.startswith("config.headers.X-B.1: ")
    assert isinstance(info.value, InvalidInput)
    assert info.value.details == [{"field": "config.headers.X-B.1", "message": info.value.reason}]


def test_resolve_refuses_an_expr_object_with_other_keys() -> None:
    with pytest.raises(ExpressionError) as info:
        resolve({"a": {"$expr": "input.name", "other": 1}}, SCOPE, "config")
    assert info.value.field == "config.a"


@pytest.mark.parametrize(
    ("value", "field", "fragment"),
    [
        ("{{ [[ }}", "f", "ends too early"),
        ("x {{ input. }} y", "f", "ends too early"),
        ("{{ a ~ b }}", "f", "Unknown token ~"),
        ("{{ a[?b==] }}", "f", "unexpected ']'"),
        ("{{ }}", "f", "empty"),
        ("{{ input.name", "f", "never closed"),
        ("ok {{ a }} then {{ b", "f", "never closed"),
        ("{{ nofunc(a) }}", "f", "unknown JMESPath function nofunc()"),
        ({"$expr": "a."}, "f", "ends too early"),
        ({"$expr": ""}, "f", "empty"),
        ({"$expr": 3}, "f.$expr", "must be a string"),
        ({"$expr": "a", "b": 1}, "f", "no other keys (found b)"),
    ],
)
def test_check_reports_bad_expressions_with_their_field(
    value: Any, field: str, fragment: str
) -> None:
    found = check(value, "f")
    assert len(found) == 1, found
    assert found[0]["field"] == field
    assert fragment in found[0]["message"], found


def test_check_reports_every_problem_at_its_path() -> None:
    value = {
        "url": "https://x.example/{{ input.id }}",
        "headers": {"A": "{{ [[ }}", "B": "fine"},
        "body": {"items": [{"$expr": "ok"}, {"$expr": "a.", "x": 1}, ["{{ nofunc() }}"]]},
        "n": 3,
        "t": None,
    }
    assert [p["field"] for p in check(value, "nodes.a.config")] == [
        "nodes.a.config.headers.A",
        "nodes.a.config.body.items.1",
        "nodes.a.config.body.items.2.0",
    ]


def test_check_accepts_good_and_literal_values() -> None:
    value = {
        "a": "{{ {a: {b: input.x}} }}",
        "b": [{"$expr": "input.tags[?@ != 'a'] | [0]"}, 1, None, True, "plain {text}"],
        "c": "{{ input.a }} and {{ input.b }}",
    }
    assert check(value) == []


def test_template_ends_at_the_first_closing_braces_that_compile() -> None:
    assert resolve("{{ {a: {b: input.count}} }}", SCOPE) == {"a": {"b": 3}}
    assert resolve("x{{ {a: input.count}}}y", SCOPE) == 'x{"a":3}y'


def test_search_and_its_errors() -> None:
    assert search("input.contact.phones[1].n", SCOPE) == "2"
    assert search("input.nothing.deeper", SCOPE) is None
    with pytest.raises(ExpressionError) as info:
        search("input.", SCOPE, "trigger.filter")
    assert info.value.field == "trigger.filter"
    with pytest.raises(ExpressionError, match="failed"):
        search("sum(input.tags)", SCOPE)


@pytest.mark.parametrize(
    ("value", "expected"),
    [
        (None, False),
        (False, False),
        ("", False),
        ([], False),
        ({}, False),
        (0, True),
        (0.0, True),
        (True, True),
        ("false", True),
        ([None], True),
        ({"a": None}, True),
    ],
)
def test_truthy_follows_jmespath(value: Any, expected: bool) -> None:
    assert truthy(value) is expected


def test_is_expression() -> None:
    assert is_expression({"$expr": "a"})
    assert is_expression({"$expr": "a", "b": 1})
    assert is_expression("x {{ a }}")
    assert not is_expression("x { a }")
    assert not is_expression({"a": "{{ b }}"})
    assert not is_expression(3)
