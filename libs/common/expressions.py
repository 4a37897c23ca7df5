"""Evaluate the expressions a configuration holds: JMESPath, in two forms, anywhere in JSON.

* ``{"$expr": "<jmespath>"}`` — an object whose only key is ``$expr`` stands for the value
  of the expression (any JSON: a list, a number, null, …).
* ``"{{ <jmespath> }}"`` inside a string. A string that is exactly one template (nothing
  before or after) stands for the expression's raw value, like ``$expr``; templates embedded
  in longer text are interpolated as text: a string as it is, ``null`` as ``""``, anything
  else JSON-encoded (``true``, ``3``, ``{"a":1}``).

Object keys are literal; only values are evaluated. A template ends at the first ``}}``
after which its text is a valid expression, so ``{{ {a: b} }}`` works. There is no escape
for a literal ``{{``: a string holding one must hold a valid template.

:func:`check` finds every problem of a value at once (when a flow is saved); :func:`resolve`
evaluates a value against a scope (when a node runs) and raises :class:`ExpressionError`
naming the JSON path of the first bad value. Truthiness is JMESPath's (:func:`truthy`).
"""

from __future__ import annotations

import json
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from typing import Any

import jmespath
import jmespath.exceptions
from jmespath.functions import Functions
from jmespath.parser import ParsedResult

from libs.common.errors import InvalidInput

EXPR_KEY = "$expr"
OPEN = "{{"
CLOSE = "}}"


class ExpressionError(InvalidInput):
    """An expression does not compile or cannot be evaluated.

    ``field`` is the JSON path of the bad value (``nodes.a.config.url``), ``reason`` what is
    wrong with it; ``message`` (as every TetherError's) is ``"<field>: <reason>"``.
    """

    default_code = "invalid_expression"

    def __init__(self, field: str, reason: str) -> None:
        super().__init__(
            f"{field}: {reason}" if field else reason,
            details=[{"field": field, "message": reason}],
        )
        self.field = field
        self.reason = reason


def join(field: str, key: str | int) -> str:
    """Return the path of ``key`` inside ``field`` (``a.b`` + ``c`` → ``a.b.c``)."""
    return f"{field}.{key}" if field else str(key)


def compile_expression(expression: str, field: str = "") -> ParsedResult:
    """Compile a JMESPath expression; raise ExpressionError naming ``field`` if it is invalid."""
    if not expression.strip():
        raise ExpressionError(field, "the expression is empty")
    try:
        parsed = jmespath.compile(expression)
    except jmespath.exceptions.JMESPathError as exc:
        raise ExpressionError(field, f"not a valid JMESPath expression: {_why(exc)}") from exc
    unknown = sorted(_functions(parsed.parsed) - set(Functions.FUNCTION_TABLE))
    if unknown:
        raise ExpressionError(field, f"unknown JMESPath function {unknown[0]}()")
    return parsed


def search(expression: str, data: Any, field: str = "") -> Any:
    """Return the value of ``expression`` over ``data``; ExpressionError when it fails."""
    parsed = compile_expression(expression, field)
    try:
        return parsed.search(data)
    except jmespath.exceptions.JMESPathError as exc:
        raise ExpressionError(field, f"the expression failed: {_why(exc)}") from exc


def truthy(value: Any) -> bool:
    """Tell whether JMESPath counts ``value`` as true: not null, false, "", [] or {} (0 is true)."""
    if value is None or value is False:
        return False
    if isinstance(value, str | list | dict | tuple):
        return len(value) > 0
    return True


def is_expression(value: Any) -> bool:
    """Tell whether ``value`` is evaluated at run time: an ``$expr`` object or a ``{{`` string."""
    if isinstance(value, dict):
        return EXPR_KEY in value
    return isinstance(value, str) and OPEN in value


def check(value: Any, field: str = "") -> list[dict[str, str]]:
    """Return every problem of the expressions in ``value`` as ``{field, message}``."""
    found: list[dict[str, str]] = []
    for where, node in _walk(value, field):
        try:
            if isinstance(node, dict):
                compile_expression(_expr_of(node, where), where)
            else:
                list(_templates(node, where))
        except ExpressionError as exc:
            found.append({"field": exc.field, "message": exc.reason})
    return found


def resolve(value: Any, scope: Any, field: str = "") -> Any:
    """Return ``value`` with every expression replaced by its value over ``scope``.

    The value given is not changed; the result shares no mutable part with it.
    """
    if isinstance(value, dict):
        if EXPR_KEY in value:
            return search(_expr_of(value, field), scope, field)
        return {k: resolve(v, scope, join(field, k)) for k, v in value.items()}
    if isinstance(value, list):
        return [resolve(v, scope, join(field, i)) for i, v in enumerate(value)]
    if isinstance(value, str) and OPEN in value:
        return _render(value, scope, field)
    return value


# --- internals --------------------------------------------------------------------------


@dataclass(frozen=True)
class _Template:
    start: int
    end: int
    parsed: ParsedResult


def _why(exc: jmespath.exceptions.JMESPathError) -> str:
    """Say what is wrong in one line (JMESPath's own text spans lines, with a caret)."""
    if isinstance(exc, jmespath.exceptions.LexerError):
        return f"{exc.message} at character {exc.lexer_position}"
    if isinstance(exc, jmespath.exceptions.IncompleteExpressionError):
        return "the expression ends too early"
    if isinstance(exc, jmespath.exceptions.ParseError):
        if exc.token_type == "EOF":
            return "the expression ends too early"
        return f"unexpected {exc.token_value!r} at character {exc.lex_position}"
    return str(exc).splitlines()[0].strip() or type(exc).__name__


def _functions(ast: Mapping[str, object]) -> set[str]:
    """Return the names of the functions an expression's syntax tree calls."""
    names = {str(ast["value"])} if ast.get("type") == "function_expression" else set()
    children = ast.get("children")
    for child in children if isinstance(children, list) else ():
        if isinstance(child, Mapping):
            names |= _functions(child)
    return names


def _expr_of(node: dict[str, Any], field: str) -> str:
    if set(node) != {EXPR_KEY}:
        others = ", ".join(sorted(k for k in node if k != EXPR_KEY))
        raise ExpressionError(
            field, f"an object with {EXPR_KEY} has no other keys (found {others})"
        )
    expression = node[EXPR_KEY]
    if not isinstance(expression, str):
        raise ExpressionError(join(field, EXPR_KEY), "must be a string (a JMESPath expression)")
    return expression


def _walk(value: Any, field: str) -> Iterator[tuple[str, Any]]:
    """Yield (path, value) of every ``$expr`` object and every string holding ``{{``."""
    if isinstance(value, dict):
        if EXPR_KEY in value:
            yield field, value
            return
        for k, v in value.items():
            yield from _walk(v, join(field, k))
    elif isinstance(value, list):
        for i, v in enumerate(value):
            yield from _walk(v, join(field, i))
    elif isinstance(value, str) and OPEN in value:
        yield field, value


def _templates(text: str, field: str) -> Iterator[_Template]:
    """Yield each ``{{ … }}`` of ``text``, compiled; ExpressionError on the first bad one."""
    pos = 0
    while (start := text.find(OPEN, pos)) >= 0:
        close = text.find(CLOSE, start + len(OPEN))
        if close < 0:
            raise ExpressionError(field, f"{OPEN} at character {start} is never closed by {CLOSE}")
        first_error: ExpressionError | None = None
        while close >= 0:
            inner = text[start + len(OPEN) : close]
            try:
                parsed = compile_expression(inner, field)
            except ExpressionError as exc:
                first_error = first_error or exc
                close = text.find(CLOSE, close + 1)
                continue
            yield _Template(start, close + len(CLOSE), parsed)
            pos = close + len(CLOSE)
            break
        else:
            assert first_error is not None
            raise ExpressionError(
                field, f"in the template at character {start}: {first_error.reason}"
            )


def _render(text: str, scope: Any, field: str) -> Any:
    templates = list(_templates(text, field))
    values = []
    for t in templates:
        try:
            values.append(t.parsed.search(scope))
        except jmespath.exceptions.JMESPathError as exc:
            raise ExpressionError(field, f"the expression failed: {_why(exc)}") from exc
    if len(templates) == 1 and templates[0].start == 0 and templates[0].end == len(text):
        return values[0]
    parts: list[str] = []
    pos = 0
    for t, v in zip(templates, values, strict=True):
        parts.append(text[pos : t.start])
        parts.append(_as_text(v))
        pos = t.end
    parts.append(text[pos:])
    return "".join(parts)


def _as_text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False)
