"""Configure structlog: JSON off a TTY, console on one, secrets redacted at any depth."""

from __future__ import annotations

import functools
import logging
import sys
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import orjson
import structlog
from structlog.types import EventDict, Processor, WrappedLogger

from libs.common.config import LogSettings

REDACTED = "[redacted]"

SECRET_KEYS = frozenset(
    {
        "token",
        "secret",
        "password",
        "authorization",
        "access_token",
        "refresh_token",
        "api_key",
        "client_secret",
        "code",
        "code_verifier",
        "id_token",
        "master_keys",
        "cookie",
        "set_cookie",
    }
)


def _normal(key: str) -> str:
    """Fold ``accessToken``, ``Access-Token`` and ``access_token`` to one spelling."""
    out: list[str] = []
    for i, ch in enumerate(key):
        if ch.isupper() and i and key[i - 1].islower():
            out.append("_")
        out.append(ch.lower())
    return "".join(out).replace("-", "_")


@functools.lru_cache(maxsize=4096)  # keys repeat endlessly; classify each spelling once
def is_secret_key(key: str) -> bool:
    """Tell whether a mapping key names a secret (``*_token``, ``clientSecret`` …)."""
    name = _normal(key)
    if name in SECRET_KEYS:
        return True
    return name.endswith(("_token", "_secret", "_password", "_key")) and name not in {
        "workspace_key",
        "integration_key",
        "public_key",
        "idempotency_key",
        "app_event_type_key",
        "data_source_key",
    }


def redact(value: Any) -> Any:
    """Return ``value`` with every secret-keyed entry replaced, at any depth."""
    if isinstance(value, Mapping):
        return {
            k: (REDACTED if isinstance(k, str) and is_secret_key(k) else redact(v))
            for k, v in value.items()
        }
    if isinstance(value, list | tuple):
        return [redact(v) for v in value]
    return value


_PLAIN = frozenset({str, int, float, bool, type(None)})
"""Types that hold no nested keys: most values of a line, decided without an ABC check."""


def redact_processor(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Structlog processor that redacts secret-looking keys before rendering."""
    for k, v in event_dict.items():
        if k == "event":
            continue
        if is_secret_key(k):
            event_dict[k] = REDACTED
        elif type(v) not in _PLAIN and isinstance(v, Mapping | list | tuple):
            event_dict[k] = redact(v)
    return event_dict


def add_timestamp(_: WrappedLogger, __: str, event_dict: EventDict) -> EventDict:
    """Stamp the line with the time in UTC; the JSON renderer writes it as ISO 8601 with ``Z``.

    A ``datetime`` rendered by orjson costs a fraction of formatting the text here
    (structlog's ``TimeStamper``), and this runs on every line of every request.
    """
    event_dict["timestamp"] = datetime.now(UTC)
    return event_dict


def _json(event: Any, **_: Any) -> str:
    """Serialise a log line with orjson (several times faster than json; lines are hot)."""
    return orjson.dumps(event, default=str, option=orjson.OPT_UTC_Z).decode()


def _stderr_logger(*_: Any) -> structlog.PrintLogger:
    return structlog.PrintLogger(sys.stderr)


def configure_logging(
    service: str, settings: LogSettings | None = None, *, cache: bool = True
) -> None:
    """Set up structlog and stdlib logging for one process named ``service``.

    ``cache=False`` keeps loggers reconfigurable (tests capture logs).
    """
    settings = settings or LogSettings()
    fmt = settings.log_format
    if fmt == "auto":
        fmt = "console" if sys.stderr.isatty() else "json"
    level = getattr(logging, settings.log_level.upper())
    renderer: Processor = (
        structlog.dev.ConsoleRenderer()
        if fmt == "console"
        else structlog.processors.JSONRenderer(serializer=_json)
    )
    shared: list[Processor] = [
        structlog.contextvars.merge_contextvars,
        structlog.processors.add_log_level,
        add_timestamp,
        redact_processor,
    ]
    structlog.configure(
        processors=[
            *shared,
            structlog.processors.StackInfoRenderer(),
            structlog.processors.format_exc_info,
            renderer,
        ],
        wrapper_class=structlog.make_filtering_bound_logger(level),
        # Resolve sys.stderr at each logger's creation, so a replaced stream (tests) is used.
        logger_factory=_stderr_logger,
        cache_logger_on_first_use=cache,
    )
    structlog.contextvars.clear_contextvars()
    structlog.contextvars.bind_contextvars(service=service)
    # Libraries that log through the standard library go through the same pipeline.
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(
        structlog.stdlib.ProcessorFormatter(
            foreign_pre_chain=shared,
            processors=[structlog.stdlib.ProcessorFormatter.remove_processors_meta, renderer],
        )
    )
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(max(level, logging.INFO))


def bind_request(**values: Any) -> None:
    """Bind per-request values (request_id, workspace_id, customer_id) to the log context."""
    structlog.contextvars.bind_contextvars(**{k: v for k, v in values.items() if v is not None})
