"""An external app that answers every request with a small JSON document."""

from __future__ import annotations

from aiohttp import web

from tests.fakes.server import LocalServer


class AnyApp(LocalServer):
    """Answer any method on any path with 200 and ``{"id", "items", "fields", "cursor"}``."""

    def build(self) -> web.Application:
        """Return the one catch-all route (served by :class:`LocalServer`)."""

        async def answer(_: web.Request) -> web.Response:
            return web.json_response({"id": "x-1", "items": [], "fields": [], "cursor": None})

        app = web.Application()
        app.router.add_route("*", "/{tail:.*}", answer)
        return app
