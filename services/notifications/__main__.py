"""Run the notifications service: ``python -m services.notifications``."""

from __future__ import annotations

from libs.common.logging import configure_logging
from libs.common.runtime import run_service
from libs.common.tracing import configure_tracing
from services.notifications.app import NAME, create_app
from services.notifications.settings import NotificationsSettings

if __name__ == "__main__":
    settings = NotificationsSettings.from_env()
    configure_logging(NAME, settings.service.log)
    configure_tracing(NAME)
    run_service(create_app(settings), settings.service)
