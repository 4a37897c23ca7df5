"""Live records through a connection: every pagination style, CRUD, app errors, isolation, input.

The helpers here (:class:`DataEnv`, :func:`data_env`) are shared with the sync tests.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import aiohttp
import pytest

from tests.conftest import AdminCalls, Stack, WorkspaceHandle, bearer, eventually
from tests.fakes.fake_crm import STYLES, FakeCrm

RECORD_SUBJECT = "tether.evt.instances.data_record.%"


@dataclass
class DataEnv(AdminCalls):
    """A workspace with the fake CRM's ``crm`` integration and a ``contacts`` data source."""

    ws: WorkspaceHandle
    crm: FakeCrm
    http: aiohttp.ClientSession
    admin: dict[str, str]

    async def define(self, style: str = "cursor", **kwargs: Any) -> None:
        """Create the integration and the data source (``kwargs`` go to ``data_source``)."""
        status, body = await self.request("POST", "/integrations", self.crm.integration())
        assert status == 201, body
        status, body = await self.request(
            "POST", "/data-sources", self.crm.data_source(style, **kwargs)
        )
        assert status == 201, body

    async def connect(self, customer_id: str = "cust") -> str:
        """Connect ``customer_id`` to the CRM; return its ``contacts`` instance once ready."""
        connection_id = await self.connection(customer_id, "crm", {"apiKey": self.crm.api_key})
        found: list[str] = []

        async def ready() -> bool:
            status, page = await self.request(
                "GET", f"/data-source-instances?connectionId={connection_id}"
            )
            assert status == 200, page
            found[:] = [i["id"] for i in page["items"] if i["status"] == "ready"]
            return bool(found)

        await eventually(ready, timeout=20)
        return found[0]

    async def instance(self, instance_id: str) -> dict[str, Any]:
        """Read a data-source instance with its sync state."""
        status, body = await self.request("GET", f"/data-source-instances/{instance_id}")
        assert status == 200, body
        return dict(body)

    async def sync(self, instance_id: str, timeout: float = 30) -> dict[str, Any]:
        """Run a pass now and wait until no pass runs or waits; return its last pass."""
        before = datetime.now().astimezone()
        status, body = await self.request("POST", f"/data-source-instances/{instance_id}/sync")
        assert status == 202, body

        seen: list[dict[str, Any]] = []

        async def settled() -> bool:
            view = await self.instance(instance_id)
            last = view["lastPass"]
            if (
                view["syncState"] in ("idle", "held", "failed")
                and last is not None
                and datetime.fromisoformat(last["startedAt"]) >= before
            ):
                seen.append(last)
            return bool(seen)

        # The pass that settled first is the one to report: the instance's first scheduled
        # pass may start right after it (a new instance's schedule is due at once).
        await eventually(settled, timeout=timeout)
        return dict(seen[0])

    async def synced(self, instance_id: str, query: str = "") -> list[dict[str, Any]]:
        """Return every stored record (following cursors)."""
        items: list[dict[str, Any]] = []
        cursor = ""
        while True:
            path = f"/data-source-instances/{instance_id}/synced-records?limit=50{query}{cursor}"
            status, page = await self.request("GET", path)
            assert status == 200, page
            items += page["items"]
            if not page["cursor"]:
                return items
            cursor = f"&cursor={page['cursor']}"

    async def events(self) -> list[tuple[str, dict[str, Any]]]:
        """Return the workspace's data_record events as (verb, payload), oldest first."""
        pool = await self.ws.stack.pool("instances")
        try:
            rows = await pool.fetch(
                "SELECT subject, payload FROM outbox WHERE workspace_id = $1 AND subject LIKE $2"
                " ORDER BY created_at, id",
                self.ws.id,
                RECORD_SUBJECT,
            )
        finally:
            await pool.close()
        return [(r["subject"].rsplit(".", 1)[-1], r["payload"]) for r in rows]


@pytest.fixture
async def data_env(
    stack: Stack, workspace: WorkspaceHandle, http: aiohttp.ClientSession
) -> AsyncIterator[DataEnv]:
    """A fresh workspace and a fake CRM with 12 contacts (pages of 5)."""
    async with FakeCrm() as crm:
        crm.add(12)
        yield DataEnv(workspace, crm, http, bearer(await workspace.admin_token()))


async def list_all(env: DataEnv, instance_id: str) -> tuple[list[str], int]:
    """Follow the live listing's cursors; return the ids and the number of pages."""
    ids: list[str] = []
    pages = 0
    cursor = None
    while True:
        path = f"/data-source-instances/{instance_id}/records"
        async with env.http.get(
            env.ws.url(path), params={"cursor": cursor} if cursor else None, headers=env.admin
        ) as resp:
            page = await resp.json()
            assert resp.status == 200, page
        pages += 1
        ids += [item["id"] for item in page["items"]]
        cursor = page["cursor"]
        if cursor is None:
            return ids, pages


@pytest.mark.parametrize("style", STYLES)
async def test_records_list_every_pagination_style(data_env: DataEnv, style: str) -> None:
    await data_env.define(style)
    instance_id = await data_env.connect()
    ids, pages = await list_all(data_env, instance_id)
    assert ids == list(data_env.crm.contacts)
    assert pages >= 3  # 12 contacts in pages of 5 (a page style may need an empty last page)


async def test_records_crud_through_the_connection(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect()
    base = f"/data-source-instances/{instance_id}/records"
    headers = {**data_env.admin, "Idempotency-Key": "create-once"}
    body = {"record": {"email": "new@example.com", "name": "New"}}
    status, created = await data_env.request("POST", base, body, headers=headers)
    assert status == 201, created
    status, again = await data_env.request("POST", base, body, headers=headers)
    assert status == 201
    assert again["id"] == created["id"]
    assert data_env.crm.idempotency_keys.count("create-once") == 2
    assert created["data"]["email"] == "new@example.com"
    assert created["updatedAt"]
    status, read = await data_env.request("GET", f"{base}/{created['id']}")
    assert status == 200
    assert read["data"]["name"] == "New"
    status, changed = await data_env.request(
        "PATCH", f"{base}/{created['id']}", {"record": {"name": "Renamed"}}
    )
    assert status == 200
    assert changed["data"]["name"] == "Renamed"
    assert data_env.crm.contacts[created["id"]]["name"] == "Renamed"
    status, gone = await data_env.request("DELETE", f"{base}/{created['id']}")
    assert status == 200
    assert gone == {"id": created["id"], "deleted": True}
    assert created["id"] not in data_env.crm.contacts
    status, missing = await data_env.request("GET", f"{base}/{created['id']}")
    assert status == 422
    assert missing["error"]["code"] == "app_rejected"
    assert missing["error"]["details"]["status"] == 404


async def test_records_owner_customer_may_use_them(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect("owner")
    own = bearer(await data_env.ws.customer_token("owner"))
    status, page = await data_env.request(
        "GET", f"/data-source-instances/{instance_id}/records", headers=own
    )
    assert status == 200
    assert len(page["items"]) == 5
    status, view = await data_env.request(
        "GET", f"/data-source-instances/{instance_id}", headers=own
    )
    assert status == 200
    assert view["syncState"] == "idle"


async def test_records_app_errors_are_mapped(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect()
    path = f"/data-source-instances/{instance_id}/records"
    data_env.crm.fail_lists = [500]
    status, body = await data_env.request("GET", path)
    assert status == 502, body
    assert body["error"]["code"] == "app_unavailable", body
    data_env.crm.fail_lists = [400]
    status, body = await data_env.request("GET", path)
    assert status == 422, body
    assert body["error"]["code"] == "app_rejected", body
    assert body["error"]["details"] == {"status": 400, "message": "failed with 400"}
    await data_env.crm.stop()  # nobody listens there any more
    status, body = await data_env.request("GET", path)
    assert status == 502, body
    assert body["error"]["code"] == "app_unavailable", body


@pytest.mark.slow
async def test_records_app_timeout_is_504(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect()
    data_env.crm.hold_after = 0  # the app never answers the list
    status, body = await data_env.request("GET", f"/data-source-instances/{instance_id}/records")
    assert status == 504, body
    data_env.crm.release.set()


async def test_records_routes_are_isolated(
    data_env: DataEnv, make_workspace: Any, http: aiohttp.ClientSession
) -> None:
    await data_env.define()
    instance_id = await data_env.connect("owner")
    other = bearer(await data_env.ws.customer_token("someone-else"))
    stranger = await make_workspace()
    foreign = bearer(await stranger.admin_token())
    base = f"/data-source-instances/{instance_id}"
    calls = [
        ("GET", base, None),
        ("GET", f"{base}/records", None),
        ("POST", f"{base}/records", {"record": {"email": "x@example.com"}}),
        ("GET", f"{base}/records/c000001", None),
        ("PATCH", f"{base}/records/c000001", {"record": {"name": "x"}}),
        ("DELETE", f"{base}/records/c000001", None),
        ("POST", f"{base}/sync", None),
        ("GET", f"{base}/synced-records", None),
    ]
    for method, path, body in calls:
        for who in (other, foreign):
            async with http.request(
                method,
                (stranger if who is foreign else data_env.ws).url(path),
                json=body,
                headers=who,
            ) as resp:
                assert resp.status == 404, (method, path, await resp.text())
    for verb in ("confirm", "discard"):
        status, body = await data_env.request("POST", f"{base}/sync/{verb}", headers=other)
        assert status == 403, body  # admins only
        async with http.post(stranger.url(f"{base}/sync/{verb}"), headers=foreign) as resp:
            assert resp.status == 404, await resp.text()
    assert "c000001" in data_env.crm.contacts  # nothing reached the app


async def test_records_bad_input_names_the_field(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect()
    base = f"/data-source-instances/{instance_id}"
    status, body = await data_env.request("POST", f"{base}/records", {"record": "nope"})
    assert status == 422, body
    assert body["error"]["details"][0]["field"] == "record", body
    status, body = await data_env.request("GET", f"{base}/records?cursor=%%%")
    assert status == 422, body
    assert body["error"]["details"][0]["field"] == "cursor", body
    status, body = await data_env.request("GET", f"{base}/synced-records?changedSince=yesterday")
    assert status == 422, body
    assert body["error"]["details"][0]["field"] == "changedSince", body
    status, body = await data_env.request("GET", "/data-source-instances/not-a-uuid")
    assert status == 422, body
    assert body["error"]["details"][0]["field"] == "id", body


@pytest.mark.parametrize(
    ("change", "field"),
    [
        ({"itemsPath": "data[?"}, "collection.list.itemsPath"),
        ({"path": "/x/{{ id ( }}"}, "collection.list.path"),
        (
            {"pagination": {"type": "cursor", "cursorPath": "a[?"}},
            "collection.list.pagination.cursorPath",
        ),
        ({"pagination": {"type": "carrier-pigeon"}}, "collection.list.pagination"),
    ],
)
async def test_data_source_collection_is_checked_when_saved(
    data_env: DataEnv, change: dict[str, Any], field: str
) -> None:
    body = data_env.crm.data_source("cursor")
    body["collection"]["list"].update(change)
    status, created = await data_env.request("POST", "/data-sources", body)
    assert status == 422, created
    assert any(d["field"].startswith(field) for d in created["error"]["details"]), created


async def test_data_source_sync_is_checked_when_saved(data_env: DataEnv) -> None:
    body = data_env.crm.data_source("cursor", sync={"intervalMinutes": 5, "mode": "incremental"})
    del body["collection"]["list"]["updatedSince"]
    status, created = await data_env.request("POST", "/data-sources", body)
    assert status == 422, created
    assert created["error"]["details"][0]["field"] == "sync.mode", created
    body = data_env.crm.data_source("cursor", sync={"intervalMinutes": 0})
    status, created = await data_env.request("POST", "/data-sources", body)
    assert status == 422, created
    assert "sync.intervalMinutes" in created["error"]["message"], created
    body = {**data_env.crm.data_source("cursor", sync={"intervalMinutes": 5})}
    del body["collection"]
    status, created = await data_env.request("POST", "/data-sources", body)
    assert status == 422, created
    assert created["error"]["details"][0]["field"] == "sync", created
    status, created = await data_env.request("POST", "/data-sources", data_env.crm.data_source())
    assert status == 201, created
    status, patched = await data_env.request(
        "PATCH", "/data-sources/contacts", {"collection": None, "sync": {"intervalMinutes": 5}}
    )
    assert status == 422, patched
    assert patched["error"]["details"][0]["field"] == "sync", patched


def test_records_link_pagination_keeps_to_the_api_base() -> None:
    """A next link under a base path (``/v2``) becomes a path the proxy joins onto the base."""
    from libs.common.contracts import instances as c
    from services.instances.collection import AppRequest, next_page

    spec = c.ListSpec(path="/contacts", items_path="items", pagination={"type": "link"})
    sent = AppRequest("GET", "/contacts", (("limit", "5"),))
    link = [("Link", '<https://api.example/v2/contacts?limit=5&offset=5>; rel="next"')]
    following = next_page(spec, sent, {}, link, [{"id": 1}])
    assert following == AppRequest("GET", "/contacts", (("limit", "5"), ("offset", "5")))
    assert next_page(spec, sent, {}, [], [{"id": 1}]) is None
    same = [("link", '<https://api.example/v2/contacts?limit=5>; rel="next"')]
    assert next_page(spec, sent, {}, same, [{"id": 1}]) is None  # never loops on itself


def test_records_ids_in_paths_stay_one_segment() -> None:
    from libs.common.contracts import instances as c
    from services.instances.collection import record_request

    spec = c.GetSpec(path="/contacts/{{ id }}")
    request = record_request(spec, "GET", {"id": "../admin?x=1", "record": None}, "get")
    assert request.path == "/contacts/..%2Fadmin%3Fx%3D1"
