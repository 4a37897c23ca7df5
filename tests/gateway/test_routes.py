"""From a route to its handler in two hops: ``tether.<service>.<resource>.<op>`` is answered
by a function (or a handler class's method) named ``<op>`` in ``services/<service>/<resource>.py``."""

from __future__ import annotations

from libs.cli.routes import handlers_by_subject, route_lines
from tests.conftest import run_cli

GENERIC = {
    # Every service answers these the same way, with handlers written once in libs/common.
    "system.ping": "libs.common.runtime:ping_endpoint.<locals>.ping",
    "dead_letters.list": "libs.common.dead_letters:",
    "keys.status": "libs.common.reseal:",
    "keys.reseal": "libs.common.reseal:",
}


def _expected(subject: str) -> str:
    """Return the handler's module and function name the subject names."""
    _, service, resource, op = subject.split(".")
    return f"services.{service}.{resource}:{op}"


def _follows_convention(subject: str, handler: str) -> bool:
    module, _, qualname = handler.partition(":")
    _, service, resource, op = subject.split(".")
    return module == f"services.{service}.{resource}" and qualname.split(".")[-1] == op


def test_routes_every_route_resolves_to_its_conventional_handler() -> None:
    lines = route_lines()
    assert lines
    broken = [
        (line.method, line.path, line.subject, line.handler)
        for line in lines
        if line.handler is None or not _follows_convention(line.subject, line.handler)
    ]
    assert not broken, broken


def test_routes_every_served_subject_follows_the_convention() -> None:
    """Not only routed ones: tokens.verify, workspaces.create, customers.ensure, …"""
    broken = []
    for subject, ep in handlers_by_subject().items():
        generic = GENERIC.get(".".join(subject.split(".")[2:]))
        if generic is not None:
            if not ep.handler_name.startswith(generic):
                broken.append((subject, ep.handler_name, generic))
        elif not _follows_convention(subject, ep.handler_name):
            broken.append((subject, ep.handler_name, _expected(subject)))
    assert not broken, broken


async def test_routes_cli_prints_each_route_with_its_handler() -> None:
    # In its own process: the CLI configures logging for the whole process it runs in.
    code, out = await run_cli("routes")
    assert code == 0, out
    line = next(line for line in out.splitlines() if "/credentials" in line)
    assert line.split() == [
        "GET",
        "/connections/{id}/credentials",
        "→",
        "tether.connections.credentials.get",
        "→",
        "services.connections.credentials:Credentials.get",
    ]
