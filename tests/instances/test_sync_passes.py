"""GET /data-source-instances/{id}/sync/passes: an instance's passes, newest first, paged,
seen only by whoever may see the instance."""

from __future__ import annotations

from tests.conftest import WorkspaceFactory, bearer
from tests.instances.test_records import DataEnv, data_env

__all__ = ["data_env"]


async def test_sync_passes_list_newest_first_in_pages(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect("owner")
    first = await data_env.sync(instance_id)
    data_env.crm.remove(list(data_env.crm.contacts)[:7])
    held = await data_env.sync(instance_id)
    assert held["status"] == "held", held
    status, body = await data_env.request(
        "POST", f"/data-source-instances/{instance_id}/sync/discard"
    )
    assert status == 200, body
    third = await data_env.sync(instance_id)

    base = f"/data-source-instances/{instance_id}/sync/passes"
    status, page = await data_env.request("GET", f"{base}?limit=2")
    assert status == 200, page
    assert [p["id"] for p in page["items"]] == [third["id"], held["id"]], page
    assert page["items"][1]["status"] == "discarded"
    assert (page["items"][1]["wouldDelete"], page["items"][1]["liveRecords"]) == (7, 12)
    assert page["cursor"]
    status, rest = await data_env.request("GET", f"{base}?limit=2&cursor={page['cursor']}")
    assert status == 200, rest
    assert [p["id"] for p in rest["items"]] == [first["id"]], rest
    assert rest["items"][0]["created"] == 12
    assert rest["cursor"] is None

    # The instance's customer may read them too (as GET /data-source-instances/{id}).
    owner = bearer(await data_env.ws.customer_token("owner"))
    status, mine = await data_env.request("GET", base, headers=owner)
    assert status == 200, mine
    assert len(mine["items"]) == 3


async def test_sync_passes_are_not_seen_by_others(
    data_env: DataEnv, make_workspace: WorkspaceFactory
) -> None:
    await data_env.define()
    instance_id = await data_env.connect("owner")
    await data_env.sync(instance_id)
    base = f"/data-source-instances/{instance_id}/sync/passes"

    other = await make_workspace()
    status, body = await data_env.request("GET", base, headers=bearer(await other.admin_token()))
    assert status == 404, body
    assert body["error"]["code"] == "not_found", body
    stranger = bearer(await data_env.ws.customer_token("stranger"))
    status, body = await data_env.request("GET", base, headers=stranger)
    assert status == 404, body


async def test_sync_passes_bad_input_is_named(data_env: DataEnv) -> None:
    await data_env.define()
    instance_id = await data_env.connect()
    base = f"/data-source-instances/{instance_id}/sync/passes"
    for path, field in (
        (f"{base}?cursor=not-a-cursor", "cursor"),
        (f"{base}?cursor=YQ", "cursor"),  # decodes, but is no position
        (f"{base}?limit=0", "limit"),
        ("/data-source-instances/not-a-uuid/sync/passes", "id"),
    ):
        status, body = await data_env.request("GET", path)
        assert status == 422, (path, body)
        assert field in [d.get("field") for d in body["error"]["details"]], (path, body)
