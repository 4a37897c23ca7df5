"""Forms generated from the JSON Schemas the API publishes, in a real browser.

Each test signs in, imports ``schema-form.js`` into the console's page, mounts a form built
from a schema fetched from the real catalogue endpoints, types into it as a person would and
checks what ``read()`` returns (or which sentence it refuses with).
"""

from __future__ import annotations

import json
from typing import Any

import pytest
from playwright.async_api import Page, expect

from tests.conftest import Stack, WorkspaceHandle
from tests.console.conftest import signed_in
from tests.flows.test_node_types import NODE_EXAMPLES, TRIGGER_EXAMPLES

pytestmark = pytest.mark.slow

IN = "\u203a"
"""How an error names a nested field ("Retry", the separator, "Attempts"): U+203A."""

# Loads the module and the catalogues once per page; mount() shows one form in a container.
SETUP = """async () => {
  const sf = await import("/console/static/schema-form.js");
  const api = await import("/console/static/api.js");
  const [nodes, triggers, auth, requests] = await Promise.all([
    api.get("/flow-node-types"), api.get("/flow-trigger-types"),
    api.get("/integration-auth-types"), api.get("/action-request-types"),
  ]);
  const box = document.createElement("section");
  box.setAttribute("data-testid", "sf-test");
  box.style.cssText = "max-width: 56rem; margin: 1rem auto; padding: 1rem; background: #fff;";
  document.body.prepend(box);
  const node = (type) => nodes.items.find((i) => i.type === type).configSchema;
  const union = (list) => ({ oneOf: list.items.map((i) => i.schema) });
  const schemas = {
    node, union,
    auth: union(auth), triggers: union(triggers), request: requests.items[0].schema,
    oauth2: auth.items.find((i) => i.type === "oauth2").schema,
  };
  window.sfTest = {
    sf, schemas,
    mount(schema, options) {
      const form = sf.schemaForm(schema, options);
      box.replaceChildren(form.element);
      window.sfTest.form = form;
    },
    read() {
      try {
        return { value: window.sfTest.form.read() };
      } catch (err) {
        return { error: err.message, name: err.name, field: err.control?.dataset?.field ?? null };
      }
    },
  };
}"""


async def _setup(page: Page, stack: Stack, workspace: WorkspaceHandle) -> None:
    await signed_in(page, stack, workspace)
    await page.evaluate(SETUP)


async def _mount(page: Page, schema_js: str, options: dict[str, Any]) -> None:
    """Mount a form for the schema the JS expression ``schema_js`` names (in sfTest.schemas)."""
    await page.evaluate(
        f"(options) => {{ const s = window.sfTest.schemas; window.sfTest.mount({schema_js}, options); }}",
        options,
    )


async def _read(page: Page) -> dict[str, Any]:
    result: dict[str, Any] = await page.evaluate("() => window.sfTest.read()")
    return result


async def test_console_schema_form_http_request_config(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await _setup(page, stack, workspace)
    await _mount(page, 's.node("http-request")', {"testid": "cfg", "label": "HTTP request"})
    form = page.get_by_test_id("sf-test")
    url = page.get_by_test_id("cfg-field-url")
    await expect(url).to_be_visible()
    # Labels are tied to their inputs, the required one marked.
    await expect(form.get_by_role("textbox", name="URL", exact=True)).to_have_attribute(
        "data-field", "url"
    )
    assert await url.get_attribute("aria-required") == "true"

    assert await _read(page) == {"error": "URL is required.", "name": "InputError", "field": "url"}
    assert await url.get_attribute("aria-invalid") == "true"
    await url.fill("ftp://crm.example.com")
    refused = await _read(page)
    assert refused["error"] == "URL does not have the expected form (^https?://)."

    await url.fill("https://crm.example.com/contacts/{{ input.id }}")
    await page.get_by_test_id("cfg-field-method").select_option("POST")
    await page.get_by_test_id("cfg-add-headers").click()
    await page.get_by_test_id("cfg-key-headers.0").fill("Accept")
    await page.get_by_test_id("cfg-field-headers.Accept").fill("application/json")
    await page.get_by_test_id("cfg-add-headers").click()
    await page.get_by_test_id("cfg-key-headers.1").fill("X-Count")
    await page.get_by_test_id("cfg-kind-headers.X-Count").select_option(label="Whole number")
    await page.get_by_test_id("cfg-field-headers.X-Count").fill("3")
    await page.get_by_test_id("cfg-kind-body").select_option(label="JSON")
    await page.get_by_test_id("cfg-field-body").fill('{"name": "Ada"}')
    assert await _read(page) == {
        "value": {
            "url": "https://crm.example.com/contacts/{{ input.id }}",
            "method": "POST",
            "headers": {"Accept": "application/json", "X-Count": 3},
            "body": {"name": "Ada"},
        }
    }

    # A number typed where a whole number is expected is refused by name.
    await page.get_by_test_id("cfg-field-headers.X-Count").fill("2.5")
    assert (await _read(page))["error"] == f"Headers {IN} X-Count must be a whole number."
    await page.get_by_test_id("cfg-remove-headers.1").click()

    # Any value may be an expression instead.
    await page.get_by_test_id("cfg-expr-method").click()
    await page.get_by_test_id("cfg-field-method").fill("input.method")
    read = await _read(page)
    assert read["value"]["method"] == {"$expr": "input.method"}
    assert read["value"]["headers"] == {"Accept": "application/json"}
    await page.get_by_test_id("cfg-expr-method").click()
    assert (await _read(page))["value"]["method"] == "POST"


async def test_console_schema_form_auth_types_switch_and_require(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await _setup(page, stack, workspace)
    await _mount(page, "s.auth", {"testid": "auth", "label": "Authentication"})
    kind = page.get_by_test_id("auth-field-type")
    await expect(kind).to_have_value("0")
    assert await _read(page) == {
        "error": "Authorize URL is required.",
        "name": "InputError",
        "field": "authorizeUrl",
    }
    await page.get_by_test_id("auth-field-authorizeUrl").fill("https://crm.example.com/authorize")
    await page.get_by_test_id("auth-field-tokenUrl").fill("https://crm.example.com/token")
    await page.get_by_test_id("auth-add-scopes").click()
    await page.get_by_test_id("auth-field-scopes.0").fill("contacts.read")
    await page.get_by_test_id("auth-add-scopes").click()
    await page.get_by_test_id("auth-field-scopes.1").fill("contacts.write")
    await page.get_by_test_id("auth-field-pkce").uncheck()
    await page.get_by_test_id("auth-field-clientId").fill("crm-client")
    await page.get_by_test_id("auth-field-clientAuth").select_option("client_secret_basic")
    assert await _read(page) == {
        "value": {
            "type": "oauth2",
            "authorizeUrl": "https://crm.example.com/authorize",
            "tokenUrl": "https://crm.example.com/token",
            "scopes": ["contacts.read", "contacts.write"],
            "pkce": False,
            "clientId": "crm-client",
            "clientAuth": "client_secret_basic",
        }
    }
    await page.get_by_test_id("auth-remove-scopes.0").click()
    await expect(page.get_by_test_id("auth-field-scopes.0")).to_have_value("contacts.write")

    # Another type keeps the fields both have, and drops the others.
    await kind.select_option(label="OAuth 2.0 (client credentials)")
    await expect(page.get_by_test_id("auth-field-authorizeUrl")).to_have_count(0)
    assert await _read(page) == {
        "value": {
            "type": "client_credentials",
            "tokenUrl": "https://crm.example.com/token",
            "scopes": ["contacts.write"],
            "clientId": "crm-client",
            "clientAuth": "client_secret_basic",
        }
    }
    await kind.select_option(label="API key")
    assert await _read(page) == {"value": {"type": "api_key"}}

    # A value set later shows its own type; the nullable client id empties to nothing.
    await page.evaluate(
        "(v) => window.sfTest.form.set(v)",
        {"type": "oauth2", "authorizeUrl": "https://a.example", "tokenUrl": "https://t.example"},
    )
    await expect(kind).to_have_value("0")
    await expect(page.get_by_test_id("auth-field-clientId")).to_have_value("")
    assert (await _read(page))["value"] == {
        "type": "oauth2",
        "authorizeUrl": "https://a.example",
        "tokenUrl": "https://t.example",
    }


async def test_console_schema_form_nullable_maps_and_expressions(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await _setup(page, stack, workspace)
    value = {
        "items": {"$expr": "nodes.fetch.body.contacts"},
        "nodes": {"t": {"type": "transform", "config": {"expression": "item"}}},
    }
    await _mount(page, 's.node("for-each")', {"testid": "fe", "value": value})
    await expect(page.get_by_test_id("fe-field-items")).to_have_value("nodes.fetch.body.contacts")
    assert await page.get_by_test_id("fe-expr-items").get_attribute("aria-pressed") == "true"
    assert await _read(page) == {"value": value}

    # A nullable object gets a value through its checkbox; bounds are checked by name.
    retry = page.get_by_test_id("fe-set-nodes.t.retry")
    await expect(retry).not_to_be_checked()
    await retry.check()
    await page.get_by_test_id("fe-field-nodes.t.retry.attempts").fill("50")
    assert (await _read(page))["error"] == (
        f"Nodes {IN} t {IN} Retry {IN} Attempts must be at most 10."
    )
    await page.get_by_test_id("fe-field-nodes.t.retry.attempts").fill("5")
    await page.get_by_test_id("fe-field-nodes.t.onError").select_option("continue")
    read = (await _read(page))["value"]
    assert read["nodes"]["t"]["retry"] == {"attempts": 5}
    assert read["nodes"]["t"]["onError"] == "continue"
    await retry.uncheck()
    assert "retry" not in (await _read(page))["value"]["nodes"]["t"]

    # Renaming a map entry moves its fields; a literal list replaces the expression.
    await page.get_by_test_id("fe-key-nodes.0").fill("each")
    await expect(page.get_by_test_id("fe-field-nodes.each.type")).to_have_value("transform")
    renamed = page.get_by_role("textbox", name=f"Nodes {IN} each {IN} Config {IN} expression")
    await expect(renamed).to_have_value("item")
    await page.get_by_test_id("fe-expr-items").click()
    await page.get_by_test_id("fe-set-items").check()
    await page.get_by_test_id("fe-add-items").click()
    await page.get_by_test_id("fe-kind-items.0").select_option(label="Number")
    await page.get_by_test_id("fe-field-items.0").fill("7")
    assert await _read(page) == {
        "value": {
            "items": [7],
            "nodes": {
                "each": {
                    "type": "transform",
                    "config": {"expression": "item"},
                    "onError": "continue",
                }
            },
        }
    }

    # Nullable numbers (a delay's seconds) read as nothing when empty, a number when typed.
    await _mount(page, 's.node("delay")', {"testid": "d", "value": {"seconds": None}})
    assert await _read(page) == {"value": {"seconds": None}}
    await page.get_by_test_id("d-field-seconds").fill("abc")
    assert (await _read(page))["error"] == "Seconds must be a number."
    await page.get_by_test_id("d-field-seconds").fill("30")
    assert await _read(page) == {"value": {"seconds": 30}}


async def test_console_schema_form_json_view_round_trip(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await _setup(page, stack, workspace)
    value = {"method": "POST", "path": "/contacts", "body": {"name": {"$expr": "input.name"}}}
    await _mount(page, "s.request", {"testid": "req", "value": value, "label": "Request"})
    toggle = page.get_by_test_id("req-json-toggle")
    text = page.get_by_test_id("req-json")
    await expect(text).to_be_hidden()
    await toggle.click()
    await expect(text).to_be_visible()
    assert json.loads(await text.input_value()) == value
    assert await toggle.get_attribute("aria-pressed") == "true"

    # Bad JSON is shown as an error and kept, not thrown away.
    await text.fill('{"method": "PUT", "path": ')
    await toggle.click()
    error = page.get_by_test_id("req-json-error")
    await expect(error).to_be_visible()
    await expect(error).to_contain_text("Request is not valid JSON")
    await expect(text).to_have_value('{"method": "PUT", "path": ')
    assert (await _read(page))["name"] == "InputError"

    await text.fill('{"method": "PUT", "path": "/contacts/1", "extra": [1, 2]}')
    await toggle.click()
    await expect(error).to_be_hidden()
    await expect(page.get_by_test_id("req-field-method")).to_be_visible()
    assert await page.get_by_test_id("req-field-path").input_value() == "/contacts/1"
    # A key the schema does not know is kept (shown as JSON).
    await expect(page.get_by_test_id("req-field-*")).to_be_visible()
    assert await _read(page) == {"value": {"method": "PUT", "path": "/contacts/1", "extra": [1, 2]}}
    await page.get_by_test_id("req-field-path").fill("/contacts/2")
    await toggle.click()
    assert json.loads(await text.input_value())["path"] == "/contacts/2"

    # A form that does not read stays a form, and says why.
    await toggle.click()
    await page.get_by_test_id("req-field-path").fill("")
    await toggle.click()
    await expect(error).to_have_text("Path is required.")
    await expect(page.get_by_test_id("req-field-path")).to_be_focused()
    await expect(text).to_be_hidden()


ROUND_TRIPS: list[tuple[str, Any]] = [
    *((f's.node("{t}")', good) for t, (good, _) in NODE_EXAMPLES.items()),
    *(("s.triggers", good) for good, _ in TRIGGER_EXAMPLES.values()),
    ("s.auth", {"type": "oauth2", "authorizeUrl": "https://a.example", "tokenUrl": "https://t"}),
    ("s.auth", {"type": "basic", "form": {"type": "object", "properties": {}}}),
    ("s.auth", {"type": "client_credentials", "tokenUrl": "https://t", "perConnection": True}),
    ("s.request", {"path": "/x", "headers": {"A": "b"}, "query": {"q": [1, "a"]}, "body": None}),
    # Expressions, templates in non-text fields, values that do not fit, unknown keys.
    ('s.node("delay")', {"seconds": {"$expr": "input.wait"}}),
    ('s.node("delay")', {"seconds": "{{ input.wait }}", "until": None}),
    ('s.node("http-request")', {"url": 5, "unknown": {"kept": True}, "body": [1, {"a": None}]}),
    ('s.node("http-request")', {"url": "https://x", "method": "TRACE", "query": {"": ""}}),
    ('s.node("for-each")', {"items": None, "nodes": {"a": {"type": "x", "retry": None}}}),
    ("s.auth", {"type": "unknown-kind", "x": 1}),
    ('{type: "object", properties: {a: {not: {}}, b: {type: "string"}}}', {"a": [1], "b": ""}),
    ('{type: "array", items: {type: "integer"}}', [1, -2, 3]),
    ("{}", {"anything": ["goes", 1.5, True, None]}),
]


async def test_console_schema_form_set_then_read_returns_every_example(
    page: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await _setup(page, stack, workspace)
    for schema_js, value in ROUND_TRIPS:
        await _mount(page, schema_js, {"testid": "rt"})
        read = await page.evaluate(
            """(value) => {
              const form = window.sfTest.form;
              form.set(value);
              const first = form.read();
              form.set(first);
              return [first, form.read()];
            }""",
            value,
        )
        assert read == [value, value], (schema_js, value, read)
        # Built with the value too, not only set later.
        await _mount(page, schema_js, {"testid": "rt", "value": value})
        assert await _read(page) == {"value": value}, (schema_js, value)


async def test_console_schema_form_fits_a_phone(
    phone: Page, stack: Stack, workspace: WorkspaceHandle
) -> None:
    await _setup(phone, stack, workspace)
    value = {
        "items": [1, "two", {"three": 3}],
        "nodes": {
            "fetch": {
                "type": "http-request",
                "config": {"url": "https://crm.example.com", "headers": {"Accept": "*/*"}},
                "retry": {"attempts": 5},
            }
        },
        "parallelism": 2,
    }
    await _mount(phone, 's.node("for-each")', {"testid": "fe", "value": value})
    await expect(phone.get_by_test_id("fe-field-nodes.fetch.retry.attempts")).to_have_value("5")
    await expect(phone.get_by_test_id("fe-field-items.2")).to_be_visible()
    overflow = await phone.evaluate(
        "() => document.querySelector('[data-testid=sf-test]').scrollWidth"
        " - document.querySelector('[data-testid=sf-test]').clientWidth"
    )
    assert overflow <= 0, "the form scrolls sideways on a phone"
    assert await _read(phone) == {"value": value}
