"""Field mappings: definitions with levels and revisions, instances built by deployments on
each connection's field schema, customisation by field choice, runs, upgrade and reset,
breakage when the app's fields change, the flow node, and isolation."""

from __future__ import annotations

from typing import Any

from tests.conftest import Stack, WorkspaceFactory, bearer, eventually
from tests.fakes.webhook_app import FakeWebhookApp
from tests.flows.runs_stack import make_env, runs_stack
from tests.instances.conftest import DATA_SOURCE, Crm

__all__ = ["runs_stack"]

APP_SCHEMA = {
    "type": "object",
    "properties": {
        "email": {"type": "string"},
        "age": {"type": "integer"},
        "isVip": {"type": "boolean"},
        "nickname": {"type": "string"},
    },
}


def mapping(key: str = "contact-fields", **overrides: Any) -> dict[str, Any]:
    """Return an app-level, auto-deployed field mapping of the crm ``contacts`` data source."""
    return {
        "key": key,
        "level": "app",
        "integrationKey": "crm",
        "dataSourceKey": "contacts",
        "name": "Contact fields",
        "appSchema": APP_SCHEMA,
        "importValue": {"email": {"$expr": "email"}, "age": {"$expr": "age"}, "isVip": "{{ vip }}"},
        "exportValue": {
            "email": {"$expr": "email"},
            "age": {"$expr": "age"},
            "vip": {"$expr": "isVip"},
        },
        "autoDeploy": True,
        **overrides,
    }


async def define(crm: Crm, body: dict[str, Any]) -> dict[str, Any]:
    """Create a field mapping; return it."""
    status, created = await crm.request("POST", "/field-mappings", body)
    assert status == 201, created
    return dict(created)


async def instances_of(crm: Crm, connection_id: str) -> list[dict[str, Any]]:
    """Return a connection's field-mapping instances."""
    status, page = await crm.request(
        "GET", f"/field-mapping-instances?connectionId={connection_id}"
    )
    assert status == 200, page
    return list(page["items"])


async def deployed(crm: Crm, customer_id: str) -> tuple[str, dict[str, Any]]:
    """Connect ``customer_id``, wait for the deployment; return the connection and its instance."""
    connection_id = await crm.connect(customer_id)
    deployment = await crm.settled(connection_id)
    assert deployment["status"] == "succeeded", deployment
    [instance] = await instances_of(crm, connection_id)
    return connection_id, instance


async def source_instance(crm: Crm, connection_id: str) -> str:
    """Return the id of a connection's ``contacts`` data-source instance."""
    _, page = await crm.request("GET", f"/data-source-instances?connectionId={connection_id}")
    return str(page["items"][0]["id"])


def fields_of_error(error: dict[str, Any]) -> list[str]:
    """Return the fields a 4xx error names."""
    return [d.get("field") for d in error["error"].get("details") or []]


# --- definitions --------------------------------------------------------------------------


async def test_field_mappings_define_read_revise_delete(crm: Crm) -> None:
    created = await define(crm, mapping())
    assert (created["revision"], created["level"], created["dataSourceKey"]) == (
        1,
        "app",
        "contacts",
    )
    assert created["importValue"]["isVip"] == "{{ vip }}"
    status, read = await crm.request("GET", "/field-mappings/contact-fields")
    assert (status, read) == (200, created)

    status, refused = await crm.request("PATCH", "/field-mappings/contact-fields", {"name": "X"})
    assert (status, refused["error"]["code"]) == (422, "revision_required"), refused
    headers = {**crm.admin, "If-Match": '"1"'}
    status, revised = await crm.request(
        "PATCH", "/field-mappings/contact-fields", {"name": "Contacts v2"}, headers
    )
    assert (status, revised["revision"], revised["name"]) == (200, 2, "Contacts v2"), revised
    status, stale = await crm.request(
        "PATCH", "/field-mappings/contact-fields", {"name": "Lost"}, headers
    )
    assert (status, stale["error"]["code"]) == (409, "revision_conflict"), stale
    status, page = await crm.request("GET", "/field-mappings/contact-fields/revisions")
    assert [r["revision"] for r in page["items"]] == [2, 1]
    status, first = await crm.request("GET", "/field-mappings/contact-fields/revisions/1")
    assert (status, first["definition"]["name"]) == (200, "Contact fields")
    status, listed = await crm.request("GET", "/field-mappings?dataSourceKey=contacts")
    assert [m["key"] for m in listed["items"]] == ["contact-fields"]

    status, gone = await crm.request("DELETE", "/field-mappings/contact-fields")
    assert (status, gone["deleted"]) == (200, True)
    status, _ = await crm.request("GET", "/field-mappings/contact-fields")
    assert status == 404
    status, _ = await crm.request("POST", "/field-mappings", mapping("dup"))
    status, again = await crm.request("POST", "/field-mappings", mapping("dup"))
    assert (status, again["error"]["code"]) == (409, "element_exists")


async def test_field_mappings_bad_input_names_the_field(crm: Crm) -> None:
    cases: list[tuple[dict[str, Any], str]] = [
        (mapping(importValue={"unknown": {"$expr": "email"}}), "importValue.unknown"),
        (mapping(importValue={"email": {"$expr": "[[bad"}}), "importValue.email"),
        (mapping(exportValue={"email": "{{ email"}), "exportValue.email"),
        (mapping(exportValue={"email": {"$expr": "missing"}}), "exportValue.email"),
        (mapping(dataSourceKey="nope"), "dataSourceKey"),
        (mapping(integrationKey=None), "integrationKey"),
        (mapping(level="universal"), "level"),
        (mapping(level="customer", integrationKey=None, customerId="ghost"), "customerId"),
        (mapping(appSchema={"type": "nonsense"}), "appSchema"),
        (mapping(appSchema={"type": "object"}), "appSchema.properties"),
        (mapping(integrationKey="other"), "integrationKey"),
        (mapping(key="Bad Key"), "key"),
        (mapping(appSchema=None), "appSchema"),
    ]
    for body, field in cases:
        status, error = await crm.request("POST", "/field-mappings", body)
        assert status == 422, (field, error)
        assert field in error["error"]["message"] or field in fields_of_error(error), (field, error)
    status, _ = await crm.request("GET", "/field-mappings")
    assert status == 200
    await define(crm, mapping())
    headers = {**crm.admin, "If-Match": '"1"'}
    status, error = await crm.request(
        "PATCH", "/field-mappings/contact-fields", {"importValue": {"x": "{{ a }}"}}, headers
    )
    assert status == 422, error
    assert "importValue.x" in fields_of_error(error), error
    status, error = await crm.request(
        "PATCH", "/field-mappings/contact-fields", {"appSchema": None}, headers
    )
    assert status == 422, error


# --- levels and deployments -----------------------------------------------------------------


async def test_field_mappings_levels_decide_which_connections_get_instances(crm: Crm) -> None:
    bare = await crm.connect("early")
    deployment = await crm.settled(bare)
    assert "field_mapping" not in {s["kind"] for s in deployment["steps"]}  # none defined yet

    await define(crm, mapping("app-level"))
    await define(crm, mapping("universal", level="universal", integrationKey=None))
    await define(crm, mapping("by-hand", autoDeploy=False))
    status, _ = await crm.request("POST", "/customers", {"id": "alice"})
    assert status == 201
    await define(
        crm, mapping("alice-only", level="customer", integrationKey=None, customerId="alice")
    )
    alice = await crm.connect("alice")
    bob = await crm.connect("bob")
    for connection_id in (alice, bob):
        deployment = await crm.settled(connection_id)
        assert deployment["status"] == "succeeded", deployment
    keys = {
        who: sorted(i["fieldMappingKey"] for i in await instances_of(crm, connection_id))
        for who, connection_id in (("alice", alice), ("bob", bob))
    }
    assert keys == {
        "alice": ["alice-only", "app-level", "universal"],
        "bob": ["app-level", "universal"],
    }
    steps = (await crm.settled(alice))["steps"]
    assert sorted(s["elementKey"] for s in steps if s["kind"] == "field_mapping") == keys["alice"]


async def test_field_mapping_instance_shows_mapping_and_options(crm: Crm) -> None:
    crm.app.fields.append({"key": "nick", "kind": "string", "title": "Nickname"})
    await define(crm, mapping())
    _, instance = await deployed(crm, "cust-1")
    assert (instance["baseRevision"], instance["broken"], instance["problems"]) == (1, False, [])
    assert [f["name"] for f in instance["externalFields"]] == ["age", "email", "nick", "vip"]
    fields = instance["fields"]
    assert fields["email"] == {
        "type": "string",
        "source": "email",
        "value": {"$expr": "email"},
        "customized": False,
        "options": ["age", "email", "nick", "vip"],
    }
    assert fields["age"]["options"] == ["age", "email", "nick"]  # a boolean is no integer
    assert fields["isVip"]["options"] == ["email", "nick", "vip"]
    assert fields["isVip"]["source"] == "vip"
    assert fields["nickname"]["source"] is None
    status, read = await crm.request("GET", f"/field-mapping-instances/{instance['id']}")
    assert (status, read) == (200, instance)


# --- customisation and runs -------------------------------------------------------------------


async def test_field_mapping_customer_customises_within_limits(crm: Crm) -> None:
    crm.app.fields.append({"key": "nick", "kind": "string", "title": "Nickname"})
    await define(crm, mapping())
    _, instance = await deployed(crm, "cust-1")
    path = f"/field-mapping-instances/{instance['id']}"
    customer = bearer(await crm.ws.customer_token("cust-1"))

    status, changed = await crm.request("PATCH", path, {"fields": {"nickname": "nick"}}, customer)
    assert status == 200, changed
    assert changed["fields"]["nickname"]["source"] == "nick"
    assert changed["fields"]["nickname"]["customized"] is True
    assert changed["exportValue"]["nick"] == {"$expr": "nickname"}
    assert changed["customization"] == {
        "importValue": {"nickname": {"$expr": "nick"}},
        "exportValue": {"nick": {"$expr": "nickname"}},
    }

    for body, field, message in (
        ({"fields": {"age": "missing"}}, "fields.age", "unknown external field missing"),
        ({"fields": {"age": "vip"}}, "fields.age", "cannot convert"),
        ({"fields": {"nope": "email"}}, "fields.nope", "not a field of appSchema"),
    ):
        status, error = await crm.request("PATCH", path, body, customer)
        assert status == 422, error
        assert fields_of_error(error) == [field], error
        assert message in error["error"]["message"], error
    status, error = await crm.request(
        "PATCH", path, {"customization": {"importValue": {"age": "{{ email }}"}}}, customer
    )
    assert (status, error["error"]["code"]) == (403, "customization_forbidden"), error
    status, error = await crm.request("POST", f"{path}/reset", None, customer)
    assert status == 403, error

    # Moving an app field to another external field stops exporting it to the old one.
    status, moved = await crm.request("PATCH", path, {"fields": {"email": "nick"}}, customer)
    assert status == 200, moved
    assert moved["exportValue"]["nick"] == {"$expr": "email"}
    assert "email" not in moved["exportValue"]
    # null: back to the definition's mapping for that field.
    status, back = await crm.request("PATCH", path, {"fields": {"email": None}}, customer)
    assert status == 200, back
    assert back["fields"]["email"]["source"] == "email"
    assert back["exportValue"]["email"] == {"$expr": "email"}
    assert back["customization"]["importValue"] == {"nickname": {"$expr": "nick"}}

    # An admin may send a whole patch; it is checked the same way.
    status, error = await crm.request(
        "PATCH", path, {"customization": {"exportValue": {"ghost": {"$expr": "email"}}}}
    )
    assert status == 422, error
    assert fields_of_error(error) == ["customization.exportValue.ghost"], error
    status, error = await crm.request("PATCH", path, {"customization": {"appSchema": {}}})
    assert status == 422, error
    assert fields_of_error(error) == ["customization.appSchema"], error


async def test_field_mapping_runs_import_and_export(crm: Crm) -> None:
    crm.app.fields.append({"key": "nick", "kind": "string", "title": "Nickname"})
    await define(crm, mapping())
    _, instance = await deployed(crm, "cust-1")
    path = f"/field-mapping-instances/{instance['id']}"
    status, _ = await crm.request("PATCH", path, {"fields": {"nickname": "nick"}})
    assert status == 200
    customer = bearer(await crm.ws.customer_token("cust-1"))

    external = {"email": "a@example.com", "age": "41", "vip": "true", "nick": "Al", "x": 1}
    status, imported = await crm.request(
        "POST", f"{path}/run", {"direction": "import", "input": external}, customer
    )
    assert status == 200, imported
    assert imported["output"] == {
        "email": "a@example.com",
        "age": 41,
        "isVip": True,
        "nickname": "Al",
    }
    app_record = {"email": "b@example.com", "age": 7, "isVip": False, "nickname": "Bo"}
    status, exported = await crm.request(
        "POST", f"{path}/run", {"direction": "export", "input": app_record}
    )
    assert status == 200, exported
    assert exported["output"] == {"email": "b@example.com", "age": 7, "vip": False, "nick": "Bo"}
    status, partial = await crm.request(
        "POST", f"{path}/run", {"direction": "import", "input": {"email": "c@example.com"}}
    )
    assert (status, partial["output"]) == (200, {"email": "c@example.com"})  # nulls left out

    status, error = await crm.request(
        "POST", f"{path}/run", {"direction": "import", "input": {"age": "forty"}}
    )
    assert (status, error["error"]["code"]) == (422, "conversion_failed"), error
    assert fields_of_error(error) == ["importValue.age"]
    status, error = await crm.request("POST", f"{path}/run", {"direction": "sideways", "input": {}})
    assert status == 422, error
    assert "direction" in error["error"]["message"], error
    status, error = await crm.request("POST", f"{path}/run", {"direction": "import", "input": [1]})
    assert status == 422, error
    assert "input" in error["error"]["message"], error


async def test_field_mapping_upgrade_and_reset(crm: Crm) -> None:
    crm.app.fields.append({"key": "nick", "kind": "string", "title": "Nickname"})
    await define(crm, mapping())
    _, instance = await deployed(crm, "cust-1")
    path = f"/field-mapping-instances/{instance['id']}"
    status, _ = await crm.request("PATCH", path, {"fields": {"nickname": "nick"}})
    assert status == 200

    status, _ = await crm.request(
        "PATCH",
        "/field-mappings/contact-fields",
        {"importValue": {**mapping()["importValue"], "age": "{{ to_number(age) }}"}},
        {**crm.admin, "If-Match": '"1"'},
    )
    assert status == 200
    status, read = await crm.request("GET", path)
    assert (read["outdated"], read["latestRevision"]) == (True, 2)
    assert read["importValue"]["age"] == {"$expr": "age"}  # still its base revision
    status, upgraded = await crm.request("POST", f"{path}/upgrade")
    assert status == 200, upgraded
    assert (upgraded["baseRevision"], upgraded["outdated"]) == (2, False)
    assert upgraded["importValue"]["age"] == "{{ to_number(age) }}"
    assert upgraded["fields"]["nickname"]["source"] == "nick"

    # Revision 3 maps nickname itself: the customisation conflicts with it.
    status, _ = await crm.request(
        "PATCH",
        "/field-mappings/contact-fields",
        {"importValue": {**mapping()["importValue"], "nickname": {"$expr": "email"}}},
        {**crm.admin, "If-Match": '"2"'},
    )
    assert status == 200
    status, conflict = await crm.request("POST", f"{path}/upgrade")
    assert (status, conflict["error"]["code"]) == (409, "upgrade_conflict"), conflict
    assert conflict["error"]["details"][0]["path"].startswith("importValue.nickname")

    status, reset = await crm.request("POST", f"{path}/reset")
    assert status == 200, reset
    assert (reset["customization"], reset["baseRevision"]) == ({}, 3)
    assert reset["fields"]["nickname"]["source"] == "email"


# --- the app's fields change ------------------------------------------------------------------


async def test_field_mapping_schema_change_breaks_only_customised_instances(crm: Crm) -> None:
    crm.app.fields.append({"key": "nick", "kind": "string", "title": "Nickname"})
    await define(crm, mapping())
    alice, customised = await deployed(crm, "alice")
    bob, plain = await deployed(crm, "bob")
    path = f"/field-mapping-instances/{customised['id']}"
    status, _ = await crm.request("PATCH", path, {"fields": {"nickname": "nick"}})
    assert status == 200

    crm.app.fields = [f for f in crm.app.fields if f["key"] != "nick"] + [
        {"key": "phone", "kind": "string", "title": "Phone"}
    ]
    status, _ = await crm.request(
        "POST", f"/data-source-instances/{await source_instance(crm, alice)}/refresh-schema"
    )
    assert status == 200
    status, broken = await crm.request("GET", path)
    assert broken["broken"] is True, broken
    assert broken["problems"] == [
        {
            "appField": "nickname",
            "externalField": "nick",
            "message": "external field nick no longer exists",
        }
    ]
    assert "phone" in broken["fields"]["nickname"]["options"]
    status, error = await crm.request(
        "POST", f"{path}/run", {"direction": "import", "input": {"email": "a@example.com"}}
    )
    assert (status, error["error"]["code"]) == (409, "field_mapping_broken"), error
    assert "nick" in error["error"]["message"]

    # A redeploy moves the plain instance to the new schema: it follows, nothing breaks.
    status, _ = await crm.request("POST", f"/connections/{bob}/deploy")
    assert status == 201
    await crm.settled(bob, count=2)
    [followed] = await instances_of(crm, bob)
    assert (followed["broken"], followed["id"]) == (False, plain["id"])
    assert [f["name"] for f in followed["externalFields"]] == ["age", "email", "phone", "vip"]

    # Choosing another field fixes the broken one.
    customer = bearer(await crm.ws.customer_token("alice"))
    status, fixed = await crm.request("PATCH", path, {"fields": {"nickname": "phone"}}, customer)
    assert status == 200, fixed
    assert (fixed["broken"], fixed["problems"]) == (False, [])
    status, ran = await crm.request(
        "POST", f"{path}/run", {"direction": "import", "input": {"phone": "555"}}, customer
    )
    assert (status, ran["output"]) == (200, {"nickname": "555"})


# --- isolation --------------------------------------------------------------------------------


async def test_field_mappings_isolation(crm: Crm, make_workspace: WorkspaceFactory) -> None:
    await define(crm, mapping())
    connection_id, instance = await deployed(crm, "cust-1")
    path = f"/field-mapping-instances/{instance['id']}"
    run = {"direction": "import", "input": {"email": "a@example.com"}}
    stranger = bearer(await crm.ws.customer_token("cust-2"))
    for method, sub, body in (
        ("GET", "", None),
        ("PATCH", "", {"fields": {"email": "email"}}),
        ("POST", "/run", run),
    ):
        status, refused = await crm.request(method, path + sub, body, stranger)
        assert status == 404, (sub, refused)
    status, listed = await crm.request(
        "GET", f"/field-mapping-instances?connectionId={connection_id}", headers=stranger
    )
    assert (status, listed["items"]) == (200, [])
    status, _ = await crm.request("GET", "/field-mappings", headers=stranger)
    assert status == 403
    owner = bearer(await crm.ws.customer_token("cust-1"))
    status, listed = await crm.request("GET", "/field-mapping-instances", headers=owner)
    assert (status, len(listed["items"])) == (200, 1)

    other = await make_workspace()
    other_admin = bearer(await other.admin_token())
    requests: list[tuple[str, str, Any]] = [
        ("GET", path, None),
        ("PATCH", path, {"fields": {"email": "email"}}),
        ("POST", f"{path}/upgrade", None),
        ("POST", f"{path}/reset", None),
        ("POST", f"{path}/run", run),
        ("GET", "/field-mappings/contact-fields", None),
        ("PATCH", "/field-mappings/contact-fields", {"revision": 1, "name": "x"}),
        ("DELETE", "/field-mappings/contact-fields", None),
        ("GET", "/field-mappings/contact-fields/revisions", None),
    ]
    for method, sub, body in requests:
        async with crm.http.request(method, other.url(sub), json=body, headers=other_admin) as r:
            assert r.status == 404, (sub, await r.text())
    async with crm.http.get(
        other.url(f"/field-mapping-instances?connectionId={connection_id}"), headers=other_admin
    ) as r:
        assert (r.status, (await r.json())["items"]) == (200, [])


# --- the flow node ----------------------------------------------------------------------------


async def test_apply_field_mapping_node_in_a_flow_run(runs_stack: Stack) -> None:
    async with make_env(runs_stack) as env, FakeWebhookApp(api_key="fm-key") as app:
        for path, body in (
            ("/integrations", app.integration()),
            ("/data-sources", DATA_SOURCE),
            ("/field-mappings", mapping()),
        ):
            status, created = await env.request("POST", path, body)
            assert status == 201, created
        status, connection = await env.request(
            "POST",
            "/connections",
            {
                "customerId": "flow-cust",
                "integrationKey": "crm",
                "credentials": {"apiKey": "fm-key"},
            },
        )
        assert status == 201, connection

        async def built() -> bool:
            status, page = await env.request(
                "GET", f"/field-mapping-instances?connectionId={connection['id']}"
            )
            return status == 200 and any(i["externalFields"] for i in page["items"])

        await eventually(built, timeout=20)
        instance_id = await env.instance(
            {
                "toApp": {
                    "type": "apply-field-mapping",
                    "config": {
                        "fieldMappingKey": "contact-fields",
                        "direction": "import",
                        "input": {"$expr": "input"},
                    },
                    "links": [{"to": "back"}],
                },
                "back": {
                    "type": "apply-field-mapping",
                    "config": {
                        "fieldMappingKey": "contact-fields",
                        "direction": "export",
                        "input": {"$expr": "nodes.toApp"},
                    },
                },
            },
            connection_id=str(connection["id"]),
        )
        started = await env.start(instance_id, {"email": "f@example.com", "age": "3", "vip": 1})
        run = await env.ended(started["id"])
        assert run["state"] == "failed", run  # vip 1 is no boolean
        [execution] = await env.executions(run["id"], "toApp")
        assert execution["error"]["code"] == "conversion_failed", execution

        started = await env.start(instance_id, {"email": "f@example.com", "age": "3", "vip": "no"})
        run = await env.ended(started["id"])
        assert run["state"] == "failed", run
        started = await env.start(instance_id, {"email": "f@example.com", "age": "3", "vip": True})
        run = await env.ended(started["id"])
        assert run["state"] == "completed", run
        [to_app] = await env.executions(run["id"], "toApp")
        assert to_app["output"] == {"email": "f@example.com", "age": 3, "isVip": True}
        [back] = await env.executions(run["id"], "back")
        assert back["output"] == {"email": "f@example.com", "age": 3, "vip": True}
