"""Trace context helpers: parsing traceparent, carrying a request's id into background work."""

from __future__ import annotations

import structlog

from libs.common import tracing


def test_trace_id_of_reads_only_well_formed_traceparents() -> None:
    good = "00-4bf92f3577b34da6a3ce929d0e0e4736-00f067aa0ba902b7-01"
    assert tracing.trace_id_of(good) == "4bf92f3577b34da6a3ce929d0e0e4736"
    assert tracing.trace_id_of(None) is None
    for bad in (
        "",
        "garbage",
        "00-" + "0" * 32 + "-00f067aa0ba902b7-01",  # all-zero trace id is invalid
        "00-4bf92f3577b34da6a3ce929d0e0e4736-" + "0" * 16 + "-01",
        "00-4BF92F3577B34DA6A3CE929D0E0E4736-00f067aa0ba902b7-01",  # upper case
        "00-4bf92f3577b34da6a3ce929d0e0e473-00f067aa0ba902b7-01",  # short
    ):
        assert tracing.trace_id_of(bad) is None, bad


def test_new_trace_ids_are_trace_shaped_and_distinct() -> None:
    ids = {tracing.new_trace_id() for _ in range(100)}
    assert len(ids) == 100
    assert all(tracing.trace_id_of(f"00-{i}-00f067aa0ba902b7-01") == i for i in ids)


def test_a_request_id_travels_into_background_work_without_tracing() -> None:
    assert not tracing.enabled()  # tests never install a provider in-process
    request_id = tracing.new_trace_id()
    with structlog.contextvars.bound_contextvars(request_id=request_id):
        stored = tracing.current_traceparent()
    assert tracing.trace_id_of(stored) == request_id
    assert stored is not None
    assert stored.endswith("-00")
    with structlog.contextvars.bound_contextvars(request_id="client-chosen-id"):
        assert tracing.current_traceparent() is None  # not trace-shaped: nothing to carry
    # The job or event handler's log lines carry the request's id, and only inside.
    with tracing.continued("job test", stored) as span:
        assert span is None
        assert structlog.contextvars.get_contextvars()["request_id"] == request_id
    assert "request_id" not in structlog.contextvars.get_contextvars()
    with tracing.continued("job test", None):
        assert "request_id" not in structlog.contextvars.get_contextvars()
