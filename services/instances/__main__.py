"""Run the instances service: ``python -m services.instances``."""

from __future__ import annotations

from libs.common.logging import configure_logging
from libs.common.runtime import ServiceSettings, run_service
from services.instances.app import NAME, create_app

if __name__ == "__main__":
    settings = ServiceSettings.from_env()
    configure_logging(NAME, settings.log)
    run_service(create_app(settings), settings)
