"""deploy/'s observability files: alert rules, scrape targets, dashboard and collector stay true.

Every metric an alert or a dashboard panel names is in the catalogue (``metric_names.py``)
with the labels it is filtered or grouped by; Prometheus scrapes each Tether process where
compose and Kubernetes serve its ``/metrics``; every compose process sends traces to the
collector. No Prometheus or Grafana runs here: the files are checked by reading them (and by
``promtool`` when it happens to be installed).
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from typing import Any

import pytest
import yaml

from libs.common.config import SERVICES
from tests.deploy.metric_names import SCRAPE_LABELS, known
from tests.deploy.test_manifests import DEPLOY, _k8s

PROCESSES = {*SERVICES, "gateway"}
SEVERITIES = {"critical", "warning", "info"}
DASHBOARD_ROWS = [
    "Requests & latency",
    "Events, outbox & consumers",
    "Connections & tokens",
    "Flow runs & nodes",
    "Deliveries",
    "Infrastructure",
]
COLLECTOR = "http://otel-collector:4318"

# PromQL's functions, aggregations and keywords: any other identifier in an expression is a
# metric name and must be known.
PROMQL_WORDS = frozenset(
    """
    sum min max avg count group stddev stdvar topk bottomk quantile count_values by without
    on ignoring group_left group_right and or unless bool offset rate irate increase delta
    idelta deriv predict_linear histogram_quantile abs absent absent_over_time ceil floor
    round clamp clamp_min clamp_max changes resets time timestamp vector scalar sort
    sort_desc label_replace label_join ln log2 log10 exp sqrt avg_over_time min_over_time
    max_over_time sum_over_time count_over_time quantile_over_time last_over_time
    present_over_time stddev_over_time stdvar_over_time
    """.split()  # noqa: SIM905 - a word list reads better as text
)
_STRING = re.compile(r'"(?:[^"\\]|\\.)*"')
_RANGE = re.compile(r"\[[^\]]*\]")
_SELECTOR = re.compile(r"([a-zA-Z_:][\w:]*)\s*\{([^}]*)\}")
_MATCHER = re.compile(r"([a-zA-Z_]\w*)\s*(?:=~|!~|!=|=)")
_GROUPING = re.compile(r"\b(?:by|without|on|ignoring|group_left|group_right)\s*\(([^)]*)\)")
_IDENT = re.compile(r"(?<![\w.$])[a-zA-Z_:][\w:]*")
_DURATION = re.compile(r"^(\d+(ms|s|m|h|d|w|y))+$")


def problems(expr: str) -> list[str]:
    """Return what is wrong with the metric and label names of a PromQL expression.

    Each identifier that is not a PromQL word must be a catalogued series; each label
    matcher must name a label of its metric (or ``job``/``instance``); each ``by (…)``
    label must belong to some metric of the expression.
    """
    found: list[str] = []
    metrics = set()
    for name, matchers in _SELECTOR.findall(expr):
        metric = known(name)
        for label in _MATCHER.findall(_STRING.sub('""', matchers)):
            if metric is not None and label not in metric.labels | SCRAPE_LABELS:
                found.append(f"{name} has no label {label!r}")
    bare = _STRING.sub('""', expr)
    bare = _RANGE.sub("", bare)
    bare = re.sub(r"\{[^}]*\}", "", bare)
    grouped = {label.strip() for labels in _GROUPING.findall(bare) for label in labels.split(",")}
    bare = _GROUPING.sub("", bare)
    for ident in _IDENT.findall(bare):
        if ident in PROMQL_WORDS:
            continue
        metric = known(ident)
        if metric is None:
            found.append(f"{ident} is not a catalogued metric")
        else:
            metrics.add(metric)
    allowed = SCRAPE_LABELS.union(*(m.labels for m in metrics))
    found += [f"grouping by unknown label {label!r}" for label in grouped - allowed - {""}]
    return found


def _yaml(*path: str) -> Any:
    return yaml.safe_load(DEPLOY.joinpath(*path).read_text())


def _compose() -> dict[str, Any]:
    services: dict[str, Any] = _yaml("compose.yaml")["services"]
    return services


def _rules() -> list[dict[str, Any]]:
    return [
        rule for group in _yaml("prometheus", "alerts.yml")["groups"] for rule in group["rules"]
    ]


def _dashboard() -> dict[str, Any]:
    dashboard: dict[str, Any] = json.loads(
        (DEPLOY / "grafana" / "dashboards" / "tether.json").read_text()
    )
    return dashboard


def _panels() -> list[dict[str, Any]]:
    return [p for p in _dashboard()["panels"] if p["type"] != "row"]


def test_problems_finds_unknown_metrics_and_labels() -> None:
    """The checker itself: a typo in a name or a label is caught, a good expression passes."""
    good = 'sum by (job, route) (rate(tether_http_requests_total{status=~"5.."}[5m])) > 0.05'
    assert problems(good) == []
    assert problems("sum(rate(x_bucket[5m]))") == ["x_bucket is not a catalogued metric"]
    assert problems('tether_flow_runs_total{outcome="failed"}') == [
        "tether_flow_runs_total has no label 'outcome'"
    ]
    assert problems("sum by (queue) (tether_dead_letters)") == ["grouping by unknown label 'queue'"]
    assert problems("rate(tether_http_request_duration_seconds[5m])") == [
        "tether_http_request_duration_seconds is not a catalogued metric"  # only its _bucket etc.
    ]


def test_observability_files_parse() -> None:
    for path in [
        ("prometheus", "prometheus.yml"),
        ("prometheus", "alerts.yml"),
        ("otel", "collector.yaml"),
        ("grafana", "provisioning", "datasources", "prometheus.yaml"),
        ("grafana", "provisioning", "dashboards", "tether.yaml"),
    ]:
        assert isinstance(_yaml(*path), dict), path
    assert _dashboard()["panels"]
    for rule_file in _yaml("prometheus", "prometheus.yml")["rule_files"]:
        assert (DEPLOY / "prometheus" / rule_file).is_file()


def test_every_alert_has_expr_for_severity_and_summary() -> None:
    rules = _rules()
    names = [r["alert"] for r in rules]
    assert len(names) == len(set(names)), "alert names repeat"
    for rule in rules:
        assert rule["expr"].strip(), rule["alert"]
        assert _DURATION.match(str(rule["for"])), rule["alert"]
        assert rule["labels"]["severity"] in SEVERITIES, rule["alert"]
        assert rule["annotations"]["summary"].strip(), rule["alert"]
        assert rule["annotations"]["description"].strip(), rule["alert"]


def test_alerts_cover_each_failure_the_issue_names() -> None:
    exprs = [r["expr"] for r in _rules()]
    for metric in [
        "tether_outbox_publish_lag_seconds",
        "tether_consumer_redelivered_messages",
        "tether_dead_letters",
        "tether_credential_refreshes_total",
        "tether_token_soonest_expiry_seconds",
        "tether_flow_runs_total",
        "tether_webhook_deliveries_total",
        "tether_http_requests_total",
    ]:
        assert any(re.search(rf"\b{metric}\b", e) for e in exprs), f"no alert on {metric}"
    [down] = [e for e in exprs if re.match(r"\s*up\{", e)]
    jobs = re.search(r'job=~"([^"]*)"', down)
    assert jobs is not None
    assert set(jobs.group(1).split("|")) == PROCESSES


def test_alert_and_panel_exprs_name_only_catalogued_metrics() -> None:
    exprs = {f"alert {r['alert']}": r["expr"] for r in _rules()}
    for panel in _panels():
        for target in panel["targets"]:
            exprs[f"panel {panel['title']!r} {target['refId']}"] = target["expr"]
    wrong = {where: found for where, expr in exprs.items() if (found := problems(expr))}
    assert wrong == {}
    for variable in _dashboard()["templating"]["list"]:
        query = re.fullmatch(r"label_values\((\w+), *(\w+)\)", variable["query"]["query"])
        assert query is not None, variable["name"]
        assert known(query.group(1)) is not None
        assert query.group(2) in SCRAPE_LABELS


def test_prometheus_scrapes_every_process_where_compose_serves_metrics() -> None:
    compose = _compose()
    jobs = {j["job_name"]: j for j in _yaml("prometheus", "prometheus.yml")["scrape_configs"]}
    assert set(jobs) == PROCESSES
    for name, job in jobs.items():
        env = compose[name]["environment"]
        port = env["TETHER_GATEWAY_METRICS_PORT" if name == "gateway" else "TETHER_HEALTH_PORT"]
        # One A lookup of the compose service name returns every replica.
        assert job["dns_sd_configs"] == [{"names": [name], "type": "A", "port": int(port)}]
        assert job.get("metrics_path", "/metrics") == "/metrics"
    gateway = compose["gateway"]
    metrics_port = gateway["environment"]["TETHER_GATEWAY_METRICS_PORT"]
    assert metrics_port != gateway["environment"]["TETHER_GATEWAY_PORT"]
    assert metrics_port in gateway["expose"]
    assert not any(metrics_port in str(published) for published in gateway["ports"])


def test_compose_processes_send_traces_to_the_collector() -> None:
    compose = _compose()
    for name in PROCESSES:
        env = compose[name]["environment"]
        assert env["OTEL_EXPORTER_OTLP_ENDPOINT"] == COLLECTOR, name
        assert env["OTEL_SERVICE_NAME"] == name
        assert "otel-collector" in compose[name]["depends_on"], name
    collector = compose["otel-collector"]
    assert "./otel/collector.yaml:/etc/otelcol-contrib/config.yaml:ro" in collector["volumes"]
    config = _yaml("otel", "collector.yaml")
    assert config["receivers"]["otlp"]["protocols"]["http"]["endpoint"] == "0.0.0.0:4318"
    pipeline = config["service"]["pipelines"]["traces"]
    assert "batch" in pipeline["processors"]
    assert "debug" in pipeline["exporters"]
    for kind in ("receivers", "processors", "exporters"):
        assert set(pipeline[kind]) <= set(config[kind]), kind


def test_prometheus_and_grafana_run_only_with_the_observability_profile() -> None:
    compose = _compose()
    for name in ("prometheus", "grafana"):
        assert compose[name]["profiles"] == ["observability"]
    for name in [*PROCESSES, "otel-collector", "postgres", "nats"]:
        assert "profiles" not in compose[name], name
    for name in ("otel-collector", "prometheus", "grafana"):
        image, _, tag = compose[name]["image"].rpartition(":")
        assert image, name
        assert re.match(r"v?\d+\.\d+\.\d+$", tag), f"{name} is not pinned to a version"
        for volume in compose[name].get("volumes", []):
            source = volume.split(":")[0]
            if source.startswith("./"):
                assert (DEPLOY / source).exists(), volume


def test_k8s_pods_announce_their_metrics_port() -> None:
    for name, deployment in _k8s().items():
        template = deployment["spec"]["template"]
        notes = template["metadata"]["annotations"]
        container = template["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        port = env["TETHER_GATEWAY_METRICS_PORT" if name == "gateway" else "TETHER_HEALTH_PORT"]
        assert notes["prometheus.io/scrape"] == "true", name
        assert notes["prometheus.io/port"] == port, name
        assert notes["prometheus.io/path"] == "/metrics", name
        assert int(port) in {p["containerPort"] for p in container["ports"]}, name
    services = [
        d
        for d in yaml.safe_load_all((DEPLOY / "k8s" / "gateway.yaml").read_text())
        if d["kind"] == "Service"
    ]
    [service] = services
    assert {"name": "metrics", "port": 9464, "targetPort": "metrics"} in service["spec"]["ports"]


def test_dashboard_is_grafana_json_with_the_issue_rows() -> None:
    dashboard = _dashboard()
    assert dashboard["uid"]
    assert dashboard["title"]
    assert dashboard["schemaVersion"] >= 36
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids)), "panel ids repeat"
    rows = [p["title"] for p in dashboard["panels"] if p["type"] == "row"]
    assert rows == DASHBOARD_ROWS
    [datasource] = _yaml("grafana", "provisioning", "datasources", "prometheus.yaml")["datasources"]
    assert datasource["url"] == "http://prometheus:9090"
    for panel in _panels():
        assert panel["type"] in {"timeseries", "stat"}, panel["title"]
        assert {"h", "w", "x", "y"} <= set(panel["gridPos"]), panel["title"]
        assert panel["datasource"]["uid"] == datasource["uid"], panel["title"]
        assert panel["targets"], panel["title"]
        ref_ids = [t["refId"] for t in panel["targets"]]
        assert len(ref_ids) == len(set(ref_ids)), panel["title"]
        assert all(t["expr"].strip() for t in panel["targets"]), panel["title"]


def test_grafana_provisions_the_dashboards_compose_mounts() -> None:
    [provider] = _yaml("grafana", "provisioning", "dashboards", "tether.yaml")["providers"]
    mounts = dict(v.split(":")[:2] for v in _compose()["grafana"]["volumes"])
    assert mounts["./grafana/dashboards"] == provider["options"]["path"]
    assert mounts["./grafana/provisioning"] == "/etc/grafana/provisioning"


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
def test_promtool_accepts_the_config_and_the_rules() -> None:
    for check, name in (("config", "prometheus.yml"), ("rules", "alerts.yml")):
        done = subprocess.run(
            ["promtool", "check", check, str(DEPLOY / "prometheus" / name)],
            capture_output=True,
            text=True,
            check=False,
        )
        assert done.returncode == 0, done.stdout + done.stderr
