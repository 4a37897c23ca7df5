"""Run the connections service: ``python -m services.connections``."""

from __future__ import annotations

from libs.common.logging import configure_logging
from libs.common.runtime import run_service
from libs.common.tracing import configure_tracing
from services.connections.app import NAME, create_app
from services.connections.settings import ConnectionsSettings

if __name__ == "__main__":
    settings = ConnectionsSettings.from_env()
    configure_logging(NAME, settings.service.log)
    configure_tracing(NAME)
    run_service(create_app(settings), settings.service)
