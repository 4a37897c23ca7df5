"""The dead-letters operation every service answers (operators only).

``tether.<service>.dead_letters.list`` lists the events the service's durable consumers
gave up on: unreadable ones at once, failing ones after their last allowed attempt.
``libs/common/outbox.py`` states when that happens; ``libs/common/dead_letters.py``
keeps them and serves this operation.
"""

from __future__ import annotations

from datetime import datetime
from uuid import UUID

from pydantic import Field

from libs.common.contracts.base import Operation, PageRequest, Reply


class DeadLetter(Reply):
    """An event a durable consumer gave up on (or, while it still retries, keeps failing)."""

    consumer: str = Field(description="The durable consumer's name")
    stream_seq: int = Field(description="The message's sequence in TETHER_EVENTS")
    subject: str
    event_id: UUID | None = Field(description="None when the payload was unreadable")
    workspace_id: UUID | None = Field(description="None when the payload was unreadable")
    payload: str = Field(description="The payload as received (UTF-8), cut at 16 KiB")
    payload_size: int = Field(description="The payload's size in bytes before any cut")
    error: str = Field(description="Why it failed last (the logs have the traceback)")
    deliveries: int = Field(description="Deliveries so far")
    first_failed_at: datetime
    last_failed_at: datetime
    gave_up_at: datetime | None = Field(description="None while retries remain")


class DeadLetterListRequest(PageRequest):
    """List a service's dead letters, newest failure first."""

    consumer: str | None = Field(default=None, max_length=200, description="Only this consumer")
    include_retrying: bool = Field(
        default=False, description="Also list events that failed but will be tried again"
    )


class DeadLetterPage(Reply):
    """A page of dead letters."""

    items: list[DeadLetter]
    cursor: str | None = None


def dead_letters_operation(service: str) -> Operation[DeadLetterListRequest, DeadLetterPage]:
    """Return the ``dead_letters.list`` operation of ``service``."""
    return Operation(
        f"tether.{service}.dead_letters.list",
        DeadLetterListRequest,
        DeadLetterPage,
        f"List the events {service}'s consumers gave up on (operators only)",
    )
