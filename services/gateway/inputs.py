"""Read caller input one way: JSON parsed within limits, then every value checked once.

Some values are well-formed JSON (or a well-formed URL) that no field anywhere may hold,
because what stands behind the services cannot store or encode them:

* ``\\u0000`` — PostgreSQL refuses it in ``text`` and in ``jsonb``;
* lone surrogates (``\\udb09``) — they have no UTF-8 encoding;
* ``NaN`` and ``±Infinity`` (also ``1e999``, which parses as infinity) — JSON has no such
  numbers; serialised again they silently become ``null``;
* integers beyond 64 bits — orjson, ``bigint`` and ``jsonb`` round trips refuse them;
* nesting deeper than :data:`MAX_DEPTH` — no contract needs it, and Python's parser would
  hit its recursion limit first.

:func:`check` walks a request's fields (JSON body, query string, path parameters alike)
before any contract sees them and names the path of each offending value or key, so a
contract never has to repeat these rules field by field.
"""

from __future__ import annotations

import json
import math
import re
from typing import Any

from libs.common.errors import BadRequest, InvalidInput

MAX_DEPTH = 64
INT64_MIN, INT64_MAX = -(2**63), 2**63 - 1
MAX_DETAILS = 20  # enough to fix a body by; a body of a million NULs gets no million details

_UNSAFE = re.compile("[\x00\ud800-\udfff]")
_UNSAFE_TEXT = "must not hold NUL (\\u0000) or unpaired surrogates"


def parse_json(raw: bytes) -> Any:
    """Return the JSON document in ``raw``; refuse anything that is not strict UTF-8 JSON (400)."""
    try:
        return json.loads(raw.decode("utf-8"))
    except RecursionError as exc:  # raised cleanly by the C scanner, long before the stack ends
        raise _too_deep() from exc
    except ValueError as exc:  # JSONDecodeError, UnicodeDecodeError, too many int digits
        raise BadRequest(f"the body is not valid JSON: {exc}", code="malformed_json") from exc


def check(fields: dict[str, Any]) -> None:
    """Refuse ``fields`` if any value or key in it is one no field may hold (422, named)."""
    problems: list[dict[str, str]] = []
    _walk(fields, (), problems)
    if problems:
        named = ", ".join(p["field"] for p in problems[:5])
        raise InvalidInput(f"the input is not valid: {named}", details=problems)


def _walk(value: Any, path: tuple[str, ...], problems: list[dict[str, str]]) -> None:
    if len(path) > MAX_DEPTH:
        raise _too_deep()
    if len(problems) >= MAX_DETAILS:
        return
    if isinstance(value, str):
        if _UNSAFE.search(value):
            _note(problems, path, _UNSAFE_TEXT, "string_unsafe")
    elif isinstance(value, bool) or value is None:
        return
    elif isinstance(value, int):
        if not INT64_MIN <= value <= INT64_MAX:
            _note(problems, path, "must be an integer within 64 bits", "int_out_of_range")
    elif isinstance(value, float):
        if not math.isfinite(value):
            _note(problems, path, "must be a finite number", "number_not_finite")
    elif isinstance(value, dict):
        for key, item in value.items():
            here = (*path, _shown(str(key)))
            if _UNSAFE.search(str(key)):
                _note(problems, here, f"keys {_UNSAFE_TEXT}", "key_unsafe")
            _walk(item, here, problems)
    elif isinstance(value, list | tuple):
        for index, item in enumerate(value):
            _walk(item, (*path, str(index)), problems)


def _note(problems: list[dict[str, str]], path: tuple[str, ...], message: str, kind: str) -> None:
    problems.append({"field": ".".join(path) or "(body)", "message": message, "type": kind})


def _shown(key: str) -> str:
    """Return ``key`` printable: an unsafe character becomes its JSON escape (``\\u0000``)."""
    return _UNSAFE.sub(lambda m: f"\\u{ord(m.group()):04x}", key)


def _too_deep() -> BadRequest:
    return BadRequest(f"the body nests deeper than {MAX_DEPTH} levels", code="malformed_json")
