"""deploy/ (Prometheus and Grafana) agrees with docker-compose.yml and with shared.metrics."""

from __future__ import annotations

import json
import re
from collections.abc import Iterator
from pathlib import Path
from typing import Any

import pytest
import yaml
from prometheus_client.metrics import MetricWrapperBase

from leadflow.cli import parse_command
from shared import metrics
from shared.config import Settings

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
DEPLOY = ROOT / "deploy"
PROMETHEUS_FILE = DEPLOY / "prometheus" / "prometheus.yml"
DATASOURCES_FILE = DEPLOY / "grafana" / "provisioning" / "datasources" / "prometheus.yml"
PROVIDERS_FILE = DEPLOY / "grafana" / "provisioning" / "dashboards" / "leadflow.yml"
DASHBOARD_FILE = DEPLOY / "grafana" / "dashboards" / "leadflow.json"

APP_SERVICES = ("ingest", "scoring", "routing")
OPS_SERVICES = ("prometheus", "grafana")
DATASOURCE_UID = "leadflow-prometheus"
METRIC_NAME = re.compile(r"leadflow_[a-z_]+")
ALL_INTERFACES = ("0.0.0.0", "::", "")


def load_yaml(path: Path) -> dict[str, Any]:
    """A YAML file as a dict, with anchors and merge keys resolved."""
    return yaml.safe_load(path.read_text())


def compose_services() -> dict[str, dict[str, Any]]:
    """The services of docker-compose.yml by name."""
    return load_yaml(COMPOSE_FILE)["services"]


def load_dashboard() -> dict[str, Any]:
    """The provisioned Grafana dashboard."""
    return json.loads(DASHBOARD_FILE.read_text())


def service_env(service: dict[str, Any]) -> dict[str, str]:
    """A service's environment as a dict, whether written as a mapping or `K=V` items."""
    env = service.get("environment") or {}
    if isinstance(env, list):
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def leadflow_listen_address(service: dict[str, Any]) -> tuple[str, int] | None:
    """(host, port) a leadflow container serves HTTP on, as its CLI resolves them; None if not.

    The command's `--host`/`--port` win over LEADFLOW_HTTP_HOST/LEADFLOW_HTTP_PORT, which win
    over the Settings defaults (as `leadflow.cli.load_settings` does).
    """
    command = service.get("command")
    if "build" not in service or not isinstance(command, list):
        return None
    _path, args = parse_command(command)
    if "port" not in args:
        return None
    env = service_env(service)
    fields = Settings.model_fields
    host = args["host"] if args["host"] is not None else env.get("LEADFLOW_HTTP_HOST")
    port = args["port"] if args["port"] is not None else env.get("LEADFLOW_HTTP_PORT")
    host = fields["http_host"].default if host is None else host
    port = fields["http_port"].default if port is None else port
    return str(host), int(port)


def container_ports(service: dict[str, Any]) -> set[int]:
    """The container side of a service's published `ports`."""
    ports = set()
    for entry in service.get("ports") or []:
        target = entry["target"] if isinstance(entry, dict) else str(entry).rsplit(":", 1)[-1]
        ports.add(int(str(target).split("/", 1)[0]))
    return ports


def scrape_targets(config: dict[str, Any]) -> list[tuple[str, str, dict[str, str]]]:
    """(job, host:port, labels) for every static target of a Prometheus config."""
    return [
        (job["job_name"], target, static.get("labels") or {})
        for job in config["scrape_configs"]
        for static in job.get("static_configs") or []
        for target in static["targets"]
    ]


def unreachable_targets(
    targets: list[tuple[str, str, dict[str, str]]], services: dict[str, dict[str, Any]]
) -> list[str]:
    """Targets that are not a compose service serving HTTP on all interfaces on that port."""
    problems = []
    for _, target, _ in targets:
        host, _, port = target.rpartition(":")
        address = leadflow_listen_address(services[host]) if host in services else None
        if address is None:
            problems.append(f"{target}: no leadflow service {host!r} serving HTTP in compose")
        elif address[0] not in ALL_INTERFACES:
            problems.append(f"{target}: {host} listens on {address[0]} only")
        elif int(port) != address[1]:
            problems.append(f"{target}: {host} serves HTTP on port {address[1]}")
    return problems


def exposed_metric_names() -> set[str]:
    """Every series name leadflow exposes: its client metrics' samples plus the runtime gauges."""
    suffixes = {
        "counter": ("_total",),
        "histogram": ("_bucket", "_sum", "_count"),
        "summary": ("", "_sum", "_count"),
        "gauge": ("",),
    }
    names = {
        obj._name + suffix
        for obj in vars(metrics).values()
        if isinstance(obj, MetricWrapperBase)
        for suffix in suffixes.get(obj._type, ("",))
    }
    return names | set(metrics.RUNTIME_METRIC_NAMES)


def all_panels(panels: list[dict[str, Any]]) -> Iterator[dict[str, Any]]:
    """Every panel, including those inside (collapsed) rows."""
    for panel in panels:
        yield panel
        yield from all_panels(panel.get("panels") or [])


def query_panels(dashboard: dict[str, Any]) -> list[dict[str, Any]]:
    """The panels that query something (all but rows)."""
    return [p for p in all_panels(dashboard["panels"]) if p["type"] != "row"]


def dashboard_exprs(dashboard: dict[str, Any]) -> list[str]:
    """The PromQL expression of every target of every panel."""
    return [t["expr"] for p in query_panels(dashboard) for t in p.get("targets") or []]


def unknown_metrics(exprs: list[str], exposed: set[str]) -> list[str]:
    """`metric (in expr)` for every leadflow metric name an expression uses that is not exposed."""
    return [
        f"{name} (in {expr})"
        for expr in exprs
        for name in METRIC_NAME.findall(expr)
        if name not in exposed
    ]


def ops_mounts(service: dict[str, Any]) -> dict[str, Path]:
    """Container path -> host path of a service's bind mounts from the repository."""
    mounts = {}
    for volume in service.get("volumes") or []:
        source, target, *_ = str(volume).split(":")
        if source.startswith("."):
            mounts[target] = (COMPOSE_FILE.parent / source).resolve()
    return mounts


def test_prometheus_scrapes_each_app_service_once_with_its_service_label() -> None:
    config = load_yaml(PROMETHEUS_FILE)
    assert config["global"]["scrape_interval"] in ("5s", "15s")
    jobs = config["scrape_configs"]
    assert [job["job_name"] for job in jobs] == ["leadflow"]
    assert jobs[0]["metrics_path"] == "/metrics"
    labelled = {target.rpartition(":")[0]: labels for _, target, labels in scrape_targets(config)}
    assert sorted(labelled) == sorted(APP_SERVICES)
    assert all(labels == {"service": host} for host, labels in labelled.items())


def test_every_scrape_target_is_a_compose_service_serving_http_on_that_port() -> None:
    services = compose_services()
    targets = scrape_targets(load_yaml(PROMETHEUS_FILE))
    assert targets
    assert unreachable_targets(targets, services) == []


def test_target_checker_reports_unknown_hosts_wrong_ports_and_loopback_binds() -> None:
    services = {
        "ingest": {"build": ".", "command": ["ingest", "--host", "0.0.0.0", "--port", "8000"]},
        "local": {"build": ".", "command": ["scoring", "--host", "127.0.0.1"]},
        "env": {
            "build": ".",
            "command": ["routing"],
            "environment": ["LEADFLOW_HTTP_HOST=0.0.0.0", "LEADFLOW_HTTP_PORT=9000"],
        },
        "migrate": {"build": ".", "command": ["db", "upgrade"]},
    }
    targets = [
        ("j", target, {})
        for target in ("ingest:8000", "env:9000", "ingest:8001", "local:8000", "migrate:8000")
    ]
    problems = unreachable_targets([*targets, ("j", "nowhere:80", {})], services)
    assert [problem.split(": ", 1)[0] for problem in problems] == [
        "ingest:8001",
        "local:8000",
        "migrate:8000",
        "nowhere:80",
    ]


def test_every_dashboard_query_names_a_metric_leadflow_exposes() -> None:
    exprs = dashboard_exprs(load_dashboard())
    assert len(exprs) >= 12
    assert all(METRIC_NAME.search(expr) for expr in exprs)
    assert unknown_metrics(exprs, exposed_metric_names()) == []


def test_exposed_names_follow_prometheus_client_suffixes_and_include_runtime_gauges() -> None:
    exposed = exposed_metric_names()
    assert {
        "leadflow_ingest_requests_total",
        "leadflow_publish_duration_seconds_bucket",
        "leadflow_processing_duration_seconds_count",
        "leadflow_consumer_lag",
        "leadflow_leads",
    } <= exposed
    assert "leadflow_publish_duration_seconds" not in exposed
    assert unknown_metrics(["rate(leadflow_nope_total[1m])"], exposed) == [
        "leadflow_nope_total (in rate(leadflow_nope_total[1m]))"
    ]


def test_every_dashboard_panel_queries_the_provisioned_datasource() -> None:
    datasources = load_yaml(DATASOURCES_FILE)["datasources"]
    assert [(d["type"], d["uid"]) for d in datasources] == [("prometheus", DATASOURCE_UID)]
    panels = query_panels(load_dashboard())
    assert panels
    for panel in panels:
        assert panel["type"] in ("timeseries", "stat", "bargauge"), panel["title"]
        assert panel["datasource"] == {"type": "prometheus", "uid": DATASOURCE_UID}
        assert panel["targets"], f"{panel['title']} has no query"
        for target in panel["targets"]:
            assert target.get("datasource", panel["datasource"])["uid"] == DATASOURCE_UID


def test_dashboard_identity_refresh_and_time_range() -> None:
    dashboard = load_dashboard()
    assert dashboard["uid"] == "leadflow-ops"
    assert dashboard["title"] == "leadflow operations"
    assert 36 <= dashboard["schemaVersion"] <= 41
    assert dashboard["refresh"] == "10s"
    assert dashboard["time"] == {"from": "now-1h", "to": "now"}
    ids = [p["id"] for p in all_panels(dashboard["panels"])]
    assert len(ids) == len(set(ids))


def test_grafana_datasource_url_reaches_the_compose_prometheus() -> None:
    (datasource,) = load_yaml(DATASOURCES_FILE)["datasources"]
    match = re.fullmatch(r"http://([a-z0-9_-]+):(\d+)/?", datasource["url"])
    assert match, datasource["url"]
    host, port = match[1], int(match[2])
    assert host == "prometheus"
    assert port in container_ports(compose_services()[host])


@pytest.mark.parametrize(
    ("name", "targets"),
    [
        ("prometheus", {"/etc/prometheus/prometheus.yml", "/etc/prometheus/alerts.yml"}),
        ("grafana", {"/etc/grafana/provisioning", "/var/lib/grafana/dashboards"}),
    ],
)
def test_ops_services_mount_files_that_exist_in_deploy_read_only(
    name: str, targets: set[str]
) -> None:
    service = compose_services()[name]
    mounts = ops_mounts(service)
    assert set(mounts) == targets
    for target, source in mounts.items():
        assert source.exists(), f"{name}: {source} (for {target}) does not exist"
        assert source.is_relative_to(DEPLOY.resolve()), f"{name}: {source} is not in deploy/"
    bind_mounts = [v for v in service["volumes"] if str(v).startswith(".")]
    assert all(str(v).endswith(":ro") for v in bind_mounts), name


def test_prometheus_mounts_the_config_checked_here_and_grafana_loads_the_dashboard_dir() -> None:
    services = compose_services()
    assert ops_mounts(services["prometheus"])["/etc/prometheus/prometheus.yml"] == PROMETHEUS_FILE
    grafana = ops_mounts(services["grafana"])
    assert grafana["/etc/grafana/provisioning"] / "dashboards" / PROVIDERS_FILE.name == (
        PROVIDERS_FILE
    )
    (provider,) = load_yaml(PROVIDERS_FILE)["providers"]
    assert provider["type"] == "file"
    dashboards_dir = provider["options"]["path"]
    assert grafana[dashboards_dir] == DASHBOARD_FILE.parent


def test_grafana_allows_anonymous_viewers_and_starts_after_prometheus() -> None:
    grafana = compose_services()["grafana"]
    env = service_env(grafana)
    assert env["GF_AUTH_ANONYMOUS_ENABLED"] == "true"
    assert env["GF_AUTH_ANONYMOUS_ORG_ROLE"] == "Viewer"
    assert "prometheus" in grafana["depends_on"]
    assert 3000 in container_ports(grafana)


def test_grafana_ships_no_admin_password_and_lets_nobody_sign_in() -> None:
    env = service_env(compose_services()["grafana"])
    assert "GF_SECURITY_ADMIN_PASSWORD" not in env
    assert env["GF_SECURITY_DISABLE_INITIAL_ADMIN_CREATION"] == "true"
    assert env["GF_AUTH_DISABLE_LOGIN_FORM"] == "true"
    assert env["GF_AUTH_BASIC_ENABLED"] == "false"


def test_prometheus_and_grafana_start_only_with_the_ops_profile() -> None:
    services = compose_services()
    for name in OPS_SERVICES:
        assert services[name].get("profiles") == ["ops"], name
    for name, service in services.items():
        if name not in OPS_SERVICES:
            assert not service.get("profiles"), f"{name} would not start with `docker compose up`"
