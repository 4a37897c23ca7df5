"""The JSON Schema built from an app's field list."""

from __future__ import annotations

from typing import Any

import pytest

from services.instances.lifecycle import StepFailure
from services.instances.steps import fields_schema


def test_fields_schema_of_no_fields() -> None:
    assert fields_schema([]) == {"type": "object", "properties": {}}


def test_fields_schema_types_titles_and_required() -> None:
    schema = fields_schema(
        [
            {"name": "email", "type": "string", "label": "E-mail", "required": True},
            {"name": "age", "type": "integer"},
            {"name": "score", "type": "NUMBER"},
            {"name": "vip", "type": "boolean", "required": False},
            {"name": "tags", "type": "array"},
            {"name": "extra", "type": "object", "required": True},
        ]
    )
    assert schema == {
        "type": "object",
        "properties": {
            "email": {"type": "string", "title": "E-mail"},
            "age": {"type": "integer"},
            "score": {"type": "number"},
            "vip": {"type": "boolean"},
            "tags": {"type": "array"},
            "extra": {"type": "object"},
        },
        "required": ["email", "extra"],
    }


@pytest.mark.parametrize("kind", ["date", "", None, "text", 5])
def test_fields_schema_unknown_types_accept_anything(kind: Any) -> None:
    assert fields_schema([{"name": "f", "type": kind}])["properties"] == {"f": {}}


@pytest.mark.parametrize(
    "item", [None, 1, "name", ["name"], {}, {"name": ""}, {"name": None}, {"type": "string"}]
)
def test_fields_schema_skips_items_without_a_name(item: Any) -> None:
    assert fields_schema([item, {"name": "ok"}])["properties"] == {"ok": {}}


def test_fields_schema_names_and_labels_become_text() -> None:
    schema = fields_schema([{"name": 7, "label": 8, "required": 1}])
    assert schema == {
        "type": "object",
        "properties": {"7": {"title": "8"}},
        "required": ["7"],
    }


def test_fields_schema_empty_label_is_no_title() -> None:
    assert fields_schema([{"name": "a", "label": ""}])["properties"] == {"a": {}}


def test_fields_schema_a_later_field_of_the_same_name_wins() -> None:
    schema = fields_schema([{"name": "a", "type": "string"}, {"name": "a", "type": "integer"}])
    assert schema["properties"] == {"a": {"type": "integer"}}


@pytest.mark.parametrize("answer", [None, {}, {"fields": []}, "name", 3])
def test_fields_schema_refuses_what_is_not_a_list(answer: Any) -> None:
    """The app answered something else: trying again will not help."""
    with pytest.raises(StepFailure) as caught:
        fields_schema(answer)
    assert caught.value.transient is False
