"""The lifecycle every fake external app shares: serve on a free loopback port, stop cleanly."""

from __future__ import annotations

from types import TracebackType
from typing import Self

from aiohttp import web


class LocalServer:
    """An aiohttp app on 127.0.0.1 (``url`` once started), usable with ``async with``."""

    def __init__(self) -> None:
        self.url = ""
        self._runner: web.AppRunner | None = None

    def build(self) -> web.Application:
        """Return the application to serve (subclasses add their routes)."""
        raise NotImplementedError

    async def start(self) -> None:
        """Bind 127.0.0.1 on a free port and set :attr:`url`."""
        self._runner = web.AppRunner(self.build(), access_log=None, shutdown_timeout=1)
        await self._runner.setup()
        try:
            await web.TCPSite(self._runner, "127.0.0.1", 0).start()
        except BaseException:
            await self.stop()
            raise
        host, port = self._runner.addresses[0][:2]
        self.url = f"http://{host}:{port}"

    def before_stop(self) -> None:
        """Release whatever a handler may be waiting on (a hook for subclasses)."""

    async def stop(self) -> None:
        """Stop serving and release the port; safe to call twice."""
        if self._runner is not None:
            runner, self._runner = self._runner, None
            self.before_stop()
            await runner.cleanup()

    async def __aenter__(self) -> Self:
        """Start the server for an ``async with`` block."""
        await self.start()
        return self

    async def __aexit__(
        self,
        exc_type: type[BaseException] | None,
        exc: BaseException | None,
        tb: TracebackType | None,
    ) -> None:
        """Stop the server at the end of an ``async with`` block."""
        await self.stop()
