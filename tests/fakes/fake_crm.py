"""A fake CRM: contacts with custom fields, listed in every pagination style, changed at will.

Tests (and ``bench/sync.py``) start one (``async with FakeCrm() as crm:``), create the
``crm`` integration with :meth:`FakeCrm.integration` and a data source with
:meth:`FakeCrm.data_source` (``style`` = ``cursor``, ``page`` or ``link``), then change the
contacts (:meth:`add`, :meth:`touch`, :meth:`remove`) and read what the app was asked
(``list_queries``, ``idempotency_keys``). The same contacts are listed three ways:

* ``GET /cursor/contacts?cursor=&limit=`` → ``{data, paging: {next}}`` (``next`` null at the end)
* ``GET /paged/contacts?page=&per_page=`` → ``{results}`` (an empty page after the last)
* ``GET /linked/contacts?offset=&limit=`` → ``{items}`` with ``Link: <…>; rel="next"``

Each takes ``updated_since`` (ISO 8601): only contacts changed after it. Single contacts:
``GET/PATCH/DELETE /contacts/{id}``, ``POST /contacts`` (an ``Idempotency-Key`` already seen
answers the contact it created). Knobs: ``fail_lists`` (statuses the next list calls answer),
``hold_after`` (answer that many list pages, then hold the next until ``release`` is set;
``held`` is set when one is held).
"""

from __future__ import annotations

import asyncio
import hmac
from datetime import UTC, datetime
from typing import Any

from aiohttp import web

from tests.fakes.server import LocalServer

STYLES = ("cursor", "page", "link")


def _now() -> str:
    return datetime.now(UTC).isoformat().replace("+00:00", "Z")


class FakeCrm(LocalServer):
    """Serve the fake CRM on 127.0.0.1 with a free port."""

    def __init__(self, *, api_key: str = "crm-key-123", page_size: int = 5) -> None:
        """Configure the fake; nothing listens until :meth:`start`."""
        super().__init__()
        self.api_key = api_key
        self.page_size = page_size
        self.contacts: dict[str, dict[str, Any]] = {}
        self.fields: list[dict[str, Any]] = [
            {"key": "email", "kind": "string", "title": "Email", "mandatory": True},
            {"key": "name", "kind": "string", "title": "Name", "mandatory": False},
            {"key": "tier", "kind": "string", "title": "Tier (custom)", "mandatory": False},
        ]
        self.fail_lists: list[int] = []
        self.hold_after: int | None = None
        self.list_queries: list[dict[str, str]] = []
        self.idempotency_keys: list[str] = []
        self.held: asyncio.Event
        self.release: asyncio.Event
        self._created_by_key: dict[str, str] = {}
        self._next = 0
        self._pages_served = 0

    async def start(self) -> None:
        """Create the hold events, then serve."""
        self.held = asyncio.Event()
        self.release = asyncio.Event()
        await super().start()

    def before_stop(self) -> None:
        """Release a held page so shutdown does not wait for it."""
        self.release.set()

    # -- what tests use ----------------------------------------------------------------------

    def integration(self, key: str = "crm") -> dict[str, Any]:
        """Return the body that creates an integration at this CRM (API key auth)."""
        return {
            "key": key,
            "name": "Fake CRM",
            "auth": {"type": "api_key"},
            "api": {"baseUrl": self.url, "headers": {"X-Api-Key": "{apiKey}"}},
        }

    def data_source(
        self,
        style: str = "cursor",
        *,
        key: str = "contacts",
        integration_key: str = "crm",
        sync: dict[str, Any] | None = None,
        page_size: int | None = None,
    ) -> dict[str, Any]:
        """Return the body of a data source reading this CRM's contacts in ``style``."""
        size = page_size or self.page_size
        listing: dict[str, Any]
        if style == "cursor":
            listing = {
                "path": "/cursor/contacts",
                "query": {"limit": size},
                "itemsPath": "data",
                "pagination": {"type": "cursor", "param": "cursor", "cursorPath": "paging.next"},
            }
        elif style == "page":
            listing = {
                "path": "/paged/contacts",
                "itemsPath": "results",
                "pagination": {
                    "type": "page",
                    "param": "page",
                    "start": 1,
                    "sizeParam": "per_page",
                    "size": size,
                },
            }
        else:
            listing = {
                "path": "/linked/contacts",
                "query": {"limit": size},
                "itemsPath": "items",
                "pagination": {"type": "link"},
            }
        listing["updatedSince"] = {"param": "updated_since"}
        body: dict[str, Any] = {
            "key": key,
            "integrationKey": integration_key,
            "name": "Contacts",
            "fields": {
                "path": "/fields",
                "itemsPath": "fields[].{name: key, type: kind, label: title, required: mandatory}",
            },
            "collection": {
                "list": listing,
                "get": {"path": "/contacts/{{ id }}", "recordPath": "contact"},
                "create": {"path": "/contacts", "recordPath": "contact"},
                "update": {"path": "/contacts/{{ id }}", "recordPath": "contact"},
                "delete": {"path": "/contacts/{{ id }}"},
                "idPath": "id",
                "updatedAtPath": "updatedAt",
            },
        }
        if sync is not None:
            body["sync"] = sync
        return body

    def add(self, count: int, *, tier: str = "silver") -> list[str]:
        """Create ``count`` contacts; return their ids."""
        ids = []
        for _ in range(count):
            self._next += 1
            cid = f"c{self._next:06d}"
            self.contacts[cid] = {
                "id": cid,
                "email": f"{cid}@example.com",
                "name": f"Contact {self._next}",
                "custom": {"tier": tier},
                "updatedAt": _now(),
            }
            ids.append(cid)
        return ids

    def touch(self, ids: list[str], **changes: Any) -> None:
        """Change contacts (their name, or ``changes``) and their ``updatedAt``."""
        for cid in ids:
            contact = self.contacts[cid]
            contact.update(changes or {"name": contact["name"] + "!"})
            contact["updatedAt"] = _now()

    def remove(self, ids: list[str]) -> None:
        """Delete contacts."""
        for cid in ids:
            self.contacts.pop(cid, None)

    # -- plumbing ----------------------------------------------------------------------------

    def build(self) -> web.Application:
        """Return the CRM's routes."""

        @web.middleware
        async def gate(request: web.Request, handler: Any) -> web.StreamResponse:
            key = request.headers.get("X-Api-Key", "")
            if not hmac.compare_digest(key.encode(), self.api_key.encode()):
                return web.json_response({"message": "bad api key"}, status=401)
            idem = request.headers.get("Idempotency-Key")
            if idem:
                self.idempotency_keys.append(idem)
            response: web.StreamResponse = await handler(request)
            return response

        app = web.Application(middlewares=[gate])
        app.router.add_get("/fields", self._fields)
        app.router.add_get("/cursor/contacts", self._cursor)
        app.router.add_get("/paged/contacts", self._paged)
        app.router.add_get("/linked/contacts", self._linked)
        app.router.add_get("/contacts/{id}", self._get)
        app.router.add_post("/contacts", self._create)
        app.router.add_patch("/contacts/{id}", self._update)
        app.router.add_delete("/contacts/{id}", self._delete)
        return app

    async def _fields(self, request: web.Request) -> web.Response:
        return web.json_response({"fields": self.fields})

    def _listing(self, request: web.Request) -> list[dict[str, Any]]:
        since = request.query.get("updated_since")
        items = list(self.contacts.values())
        if since:
            items = [c for c in items if c["updatedAt"] > since.replace("+00:00", "Z")]
        return items

    async def _gatekeep(self, request: web.Request) -> web.Response | None:
        """Record the list call; answer a queued failure, or hold the page when told."""
        self.list_queries.append(dict(request.query))
        if self.fail_lists:
            status = self.fail_lists.pop(0)
            return web.json_response({"message": f"failed with {status}"}, status=status)
        if self.hold_after is not None and self._pages_served >= self.hold_after:
            self.held.set()
            await self.release.wait()
        self._pages_served += 1
        return None

    def _int(self, request: web.Request, name: str, default: int) -> int:
        try:
            return int(request.query.get(name, default))
        except ValueError:
            return default

    async def _cursor(self, request: web.Request) -> web.Response:
        if (failed := await self._gatekeep(request)) is not None:
            return failed
        start = self._int(request, "cursor", 0)
        size = self._int(request, "limit", self.page_size)
        items = self._listing(request)
        page = items[start : start + size]
        following = str(start + size) if start + size < len(items) else None
        return web.json_response({"data": page, "paging": {"next": following}})

    async def _paged(self, request: web.Request) -> web.Response:
        if (failed := await self._gatekeep(request)) is not None:
            return failed
        number = self._int(request, "page", 1)
        size = self._int(request, "per_page", self.page_size)
        items = self._listing(request)
        return web.json_response({"results": items[(number - 1) * size : number * size]})

    async def _linked(self, request: web.Request) -> web.Response:
        if (failed := await self._gatekeep(request)) is not None:
            return failed
        offset = self._int(request, "offset", 0)
        size = self._int(request, "limit", self.page_size)
        items = self._listing(request)
        headers = {}
        if offset + size < len(items):
            url = request.url.update_query({"offset": str(offset + size)})
            headers["Link"] = f'<{self.url}{url.path_qs}>; rel="next"'
        return web.json_response({"items": items[offset : offset + size]}, headers=headers)

    async def _get(self, request: web.Request) -> web.Response:
        contact = self.contacts.get(request.match_info["id"])
        if contact is None:
            return web.json_response({"message": "no such contact"}, status=404)
        return web.json_response({"contact": contact})

    async def _create(self, request: web.Request) -> web.Response:
        body = await request.json()
        if not isinstance(body, dict) or not body.get("email"):
            return web.json_response({"message": "email is required"}, status=400)
        idem = request.headers.get("Idempotency-Key")
        if idem and idem in self._created_by_key:
            return web.json_response({"contact": self.contacts[self._created_by_key[idem]]})
        [cid] = self.add(1)
        self.contacts[cid].update({k: v for k, v in body.items() if k != "id"})
        if idem:
            self._created_by_key[idem] = cid
        return web.json_response({"contact": self.contacts[cid]}, status=201)

    async def _update(self, request: web.Request) -> web.Response:
        cid = request.match_info["id"]
        if cid not in self.contacts:
            return web.json_response({"message": "no such contact"}, status=404)
        body = await request.json()
        self.touch([cid], **{k: v for k, v in body.items() if k != "id"})
        return web.json_response({"contact": self.contacts[cid]})

    async def _delete(self, request: web.Request) -> web.Response:
        if self.contacts.pop(request.match_info["id"], None) is None:
            return web.json_response({"message": "no such contact"}, status=404)
        return web.Response(status=204)
