"""Run the gateway: ``python -m services.gateway``."""

from __future__ import annotations

from libs.common.logging import configure_logging
from libs.common.runtime import run, serve_until_signalled
from libs.common.tracing import configure_tracing
from services.gateway.app import GatewayConfig, create_app

if __name__ == "__main__":
    config = GatewayConfig()
    configure_logging("gateway", config.log)
    configure_tracing("gateway")
    run(
        serve_until_signalled(
            create_app(config), config.http.gateway_host, config.http.gateway_port
        )
    )
