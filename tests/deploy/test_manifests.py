"""deploy/: every service and setting the manifests name exists in the code, and vice versa."""

from __future__ import annotations

from typing import Any

import pytest
import yaml
from pydantic_settings import BaseSettings

from libs.common.config import (
    SERVICES,
    BusSettings,
    CryptoSettings,
    DatabaseSettings,
    GatewaySettings,
    LogSettings,
    RuntimeSettings,
)
from services.connections.settings import ConnectionsOptions
from services.identity.settings import IdentityOptions
from services.instances.settings import InstancesOptions
from services.notifications.settings import NotificationsOptions
from tests.conftest import ROOT

DEPLOY = ROOT / "deploy"
BASE: list[type[BaseSettings]] = [BusSettings, LogSettings, RuntimeSettings]
SETTINGS: dict[str, list[type[BaseSettings]]] = {
    "identity": [*BASE, DatabaseSettings, CryptoSettings, IdentityOptions],
    "connections": [*BASE, DatabaseSettings, CryptoSettings, ConnectionsOptions],
    "instances": [*BASE, DatabaseSettings, CryptoSettings, InstancesOptions],
    "flows": [*BASE, DatabaseSettings],
    "notifications": [*BASE, DatabaseSettings, CryptoSettings, NotificationsOptions],
    "gateway": [*BASE, GatewaySettings],
}


def env_names(service: str) -> tuple[set[str], set[str]]:
    """Return (every setting, the required ones) of a service as TETHER_* variables."""
    every, required = set(), set()
    for cls in SETTINGS[service]:
        for name, field in cls.model_fields.items():
            alias = field.validation_alias or field.alias  # an alias replaces the prefixed name
            var = alias.upper() if isinstance(alias, str) else f"TETHER_{name.upper()}"
            every.add(var)
            if field.is_required():
                required.add(var)
    return every, required


def _k8s() -> dict[str, dict[str, Any]]:
    docs = [
        d
        for f in sorted((DEPLOY / "k8s").glob("*.yaml"))
        for d in yaml.safe_load_all(f.read_text())
        if d
    ]
    return {d["metadata"]["name"]: d for d in docs if d["kind"] == "Deployment"}


def _config_map() -> dict[str, str]:
    docs = yaml.safe_load_all((DEPLOY / "k8s" / "config.yaml").read_text())
    return next(d["data"] for d in docs if d["kind"] == "ConfigMap")


def test_manifests_name_every_service_and_only_those() -> None:
    expected = {*SERVICES, "gateway"}
    assert set(_k8s()) == expected
    compose = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"]
    assert expected <= set(compose)
    infrastructure = {
        "postgres",
        "postgres-init",
        "nats",
        "otel-collector",
        "prometheus",
        "grafana",
    }
    assert set(compose) - expected == infrastructure
    for name in expected:
        assert compose[name]["command"] == [f"services.{name}"]
        assert _k8s()[name]["spec"]["template"]["spec"]["containers"][0]["args"] == [
            f"services.{name}"
        ]


@pytest.mark.parametrize("service", [*SERVICES, "gateway"])
def test_k8s_env_matches_the_settings(service: str) -> None:
    every, required = env_names(service)
    container = _k8s()[service]["spec"]["template"]["spec"]["containers"][0]
    named = {e["name"] for e in container.get("env", [])}
    shared = set(_config_map())
    assert named - every == set(), (
        f"{service} sets variables no settings class reads: {named - every}"
    )
    assert required <= named, f"{service} lacks required {required - named}"
    assert shared - set().union(*(env_names(s)[0] for s in SETTINGS)) == set()
    deployment = _k8s()[service]
    assert deployment["spec"]["replicas"] >= 2
    assert container["resources"]["requests"]
    assert container["readinessProbe"]["httpGet"]["path"] in ("/readyz", "/healthz")
    assert deployment["spec"]["template"]["spec"]["securityContext"]["runAsNonRoot"] is True


@pytest.mark.parametrize("service", [*SERVICES, "gateway"])
def test_compose_env_matches_the_settings(service: str) -> None:
    every, required = env_names(service)
    environment = yaml.safe_load((DEPLOY / "compose.yaml").read_text())["services"][service][
        "environment"
    ]
    named = {n for n in environment if n.startswith("TETHER_")}  # OTEL_* belong to OpenTelemetry
    assert named - every == set(), (
        f"{service} sets variables no settings class reads: {named - every}"
    )
    assert required <= named


def test_dockerfile_runs_any_service_as_non_root() -> None:
    text = (DEPLOY / "Dockerfile").read_text()
    assert "USER tether" in text
    assert "HEALTHCHECK" in text
    assert 'ENTRYPOINT ["python", "-m"]' in text
    assert "COPY sdk/js ./sdk/js" in text  # the gateway serves /sdk/tether.js from it
