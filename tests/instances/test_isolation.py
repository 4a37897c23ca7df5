"""Instances routes: customers see their own, admins their workspace's, nobody another's."""

from __future__ import annotations

import pytest

from tests.conftest import WorkspaceFactory, bearer
from tests.instances.conftest import Crm


@pytest.mark.parametrize(
    "path",
    [
        "/deployments/{deployment}",
        "/deployments?connectionId={connection}",
        "/app-event-subscriptions?connectionId={connection}",
        "/data-source-instances?connectionId={connection}",
    ],
)
async def test_instances_reads_are_scoped(
    crm: Crm, make_workspace: WorkspaceFactory, path: str
) -> None:
    connection_id = await crm.connect("owner")
    deployment = await crm.settled(connection_id)
    url = path.format(deployment=deployment["id"], connection=connection_id)
    owner = bearer(await crm.ws.customer_token("owner"))
    status, body = await crm.request("GET", url, headers=owner)
    assert status == 200, body
    assert "items" not in body or body["items"]
    intruder = bearer(await crm.ws.customer_token("intruder"))
    status, body = await crm.request("GET", url, headers=intruder)
    assert status == 404 or body["items"] == [], body
    other = await make_workspace()
    async with crm.http.get(other.url(url), headers=bearer(await other.admin_token())) as resp:
        body = await resp.json()
        assert resp.status == 404 or body["items"] == [], body


async def test_instances_writes_are_scoped(crm: Crm, make_workspace: WorkspaceFactory) -> None:
    connection_id = await crm.connect("owner2")
    await crm.settled(connection_id)
    _, page = await crm.request("GET", f"/data-source-instances?connectionId={connection_id}")
    instance_id = page["items"][0]["id"]
    intruder = bearer(await crm.ws.customer_token("intruder"))
    for method, path in (
        ("POST", f"/connections/{connection_id}/deploy"),
        ("POST", f"/data-source-instances/{instance_id}/refresh-schema"),
    ):
        status, _ = await crm.request(method, path, headers=intruder)
        assert status == 404, path
        other = await make_workspace()
        async with crm.http.request(
            method, other.url(path), headers=bearer(await other.admin_token())
        ) as resp:
            assert resp.status == 404, path
    owner = bearer(await crm.ws.customer_token("owner2"))
    status, _ = await crm.request("POST", f"/connections/{connection_id}/deploy", headers=owner)
    assert status == 201  # a customer may redeploy their own connection
    for method, path in (
        ("GET", "/app-event-types"),
        ("POST", "/app-event-types/contact-created/deploy"),
        ("DELETE", "/data-sources/contacts"),
    ):
        status, _ = await crm.request(method, path, headers=owner)
        assert status == 403, path
    other = await make_workspace()
    async with crm.http.get(
        other.url("/app-event-types"), headers=bearer(await other.admin_token())
    ) as resp:
        assert (await resp.json())["items"] == []
