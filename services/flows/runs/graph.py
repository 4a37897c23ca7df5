"""The shape of a flow's graph: the order nodes are visited in, and who precedes whom."""

from __future__ import annotations

from collections.abc import Mapping

from libs.common.contracts import flows as c


def predecessors(nodes: Mapping[str, c.Node]) -> dict[str, list[str]]:
    """Return, for every node, the nodes that link to it (sorted)."""
    found: dict[str, list[str]] = {key: [] for key in nodes}
    for key in sorted(nodes):
        for link in nodes[key].links:
            if link.to in found and key not in found[link.to]:
                found[link.to].append(key)
    return found


def order(nodes: Mapping[str, c.Node]) -> list[str]:
    """Return every node once, each after all its predecessors, ties by key (deterministic).

    Roots (nodes no link points to) come first. Flows are checked to be acyclic when they
    are saved; should a cycle slip through, its nodes come last in key order (they are then
    skipped, since a predecessor of each is never settled before it).
    """
    before = predecessors(nodes)
    waiting = {key: len(preds) for key, preds in before.items()}
    ready = sorted(key for key, count in waiting.items() if count == 0)
    out: list[str] = []
    while ready:
        key = ready.pop(0)
        out.append(key)
        for after in sorted({link.to for link in nodes[key].links if link.to in waiting}):
            waiting[after] -= 1
            if waiting[after] == 0:
                ready.append(after)
                ready.sort()
    return out + sorted(set(nodes) - set(out))


def reachable(nodes: Mapping[str, c.Node], start: str) -> set[str]:
    """Return ``start`` and every node reachable from it through links."""
    seen, todo = {start}, [start]
    while todo:
        node = nodes.get(todo.pop())
        for link in node.links if node else ():
            if link.to not in seen:
                seen.add(link.to)
                todo.append(link.to)
    return seen
