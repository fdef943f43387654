"""deploy/prometheus/alerts.yml: loaded by the compose Prometheus, covering lag, dead letters,
5xx, SLA breaches and down targets, with only metrics and labels leadflow registers.

The structure and names are checked by parsing, always; where promtool is installed (Debian's
`prometheus` package) it also checks the rules and config and runs alerts_test.yml.
"""

from __future__ import annotations

import ast
import re
import shutil
import subprocess
from functools import cache
from pathlib import Path
from typing import Any

import pytest
import yaml

from shared import metrics

ROOT = Path(__file__).resolve().parents[2]
PROMETHEUS_DIR = ROOT / "deploy" / "prometheus"
CONFIG_FILE = PROMETHEUS_DIR / "prometheus.yml"
RULES_FILE = PROMETHEUS_DIR / "alerts.yml"
RULES_TESTS = PROMETHEUS_DIR / "alerts_test.yml"
COMPOSE_FILE = ROOT / "docker-compose.yml"
# Where metrics are registered: prometheus-client metrics and the scrape-time families.
SOURCES = ("shared", "operations", "services", "leadflow", "views")
# Labels Prometheus adds to every series of a target (prometheus.yml gives `service`).
TARGET_LABELS = frozenset({"job", "instance", "service"})
METRIC = re.compile(r"\b(leadflow_[a-z_]+|up)\b(?!\s*\()")
SUFFIXES = {
    "Counter": ("_total",),
    "Histogram": ("_bucket", "_sum", "_count"),
    "Summary": ("", "_sum", "_count"),
    "Gauge": ("",),
    "counter": ("_total",),  # shared.metrics.counter: a CounterMetricFamily
    "gauge": ("",),
    "CounterMetricFamily": ("_total",),
    "GaugeMetricFamily": ("",),
}
SEVERITIES = ("warning", "critical")
DURATION = re.compile(r"(\d+(ms|s|m|h|d|w|y))+")


def load(path: Path) -> dict[str, Any]:
    """A YAML file as a dict."""
    return yaml.safe_load(path.read_text())


def _labels(node: ast.Call, position: int) -> frozenset[str]:
    """The label names a metric constructor is given (positionally or as a keyword)."""
    given = node.args[position] if len(node.args) > position else None
    for keyword in node.keywords:
        if keyword.arg in ("labelnames", "labels"):
            given = keyword.value
    if isinstance(given, ast.List | ast.Tuple):
        return frozenset(e.value for e in given.elts if isinstance(e, ast.Constant))
    return frozenset()


def registered_in(source: str) -> dict[str, frozenset[str]]:
    """Series name -> label names for every metric a module registers with a literal name."""
    found: dict[str, frozenset[str]] = {}
    for node in ast.walk(ast.parse(source)):
        if not isinstance(node, ast.Call) or not node.args:
            continue
        func = node.func
        kind = func.attr if isinstance(func, ast.Attribute) else getattr(func, "id", None)
        name = node.args[0]
        if kind not in SUFFIXES or not isinstance(name, ast.Constant):
            continue
        value = str(name.value)
        if not value.startswith("leadflow_"):
            continue
        base = value.removesuffix("_total") if SUFFIXES[kind] == ("_total",) else value
        # The families take their labels by keyword only (their third argument is a value).
        labels = _labels(node, 99 if kind.endswith("MetricFamily") else 2)
        for suffix in SUFFIXES[kind]:
            found[f"{base}{suffix}"] = labels | ({"le"} if suffix == "_bucket" else set())
    return found


@cache
def registered_metrics() -> dict[str, frozenset[str]]:
    """Every leadflow series name the code registers, with its labels."""
    found: dict[str, frozenset[str]] = {"up": frozenset()}
    for package in SOURCES:
        for path in (ROOT / package).rglob("*.py"):
            found.update(registered_in(path.read_text(encoding="utf-8")))
    return found


def rules() -> list[dict[str, Any]]:
    """Every rule of every group of alerts.yml."""
    return [rule for group in load(RULES_FILE)["groups"] for rule in group["rules"]]


def unknown_names(expr: str, registered: dict[str, frozenset[str]]) -> list[str]:
    """Metric names and label names in `expr` that no registered metric (or target) has."""
    problems = []
    used = METRIC.findall(expr)
    problems += [f"metric {name}" for name in used if name not in registered]
    known = set(TARGET_LABELS).union(*(registered.get(name, frozenset()) for name in used))
    for match in re.finditer(r"\b(?:by|without|on|ignoring)\s*\(([^)]*)\)", expr):
        problems += [f"label {n}" for n in re.findall(r"\w+", match[1]) if n not in known]
    for metric, matchers in re.findall(r"\b(leadflow_[a-z_]+|up)\{([^}]*)\}", expr):
        allowed = TARGET_LABELS | registered.get(metric, frozenset())
        for label in re.findall(r"(\w+)\s*(?:=~|!~|!=|=)", matchers):
            if label not in allowed:
                problems.append(f"label {label} of {metric}")
    return problems


def test_the_code_scan_finds_the_metrics_leadflow_registers_with_their_labels() -> None:
    registered = registered_metrics()
    assert set(metrics.RUNTIME_METRIC_NAMES) <= set(registered)
    assert registered["leadflow_ingest_requests_total"] == {"source", "status"}
    assert registered["leadflow_publish_duration_seconds_bucket"] == {"topic", "le"}
    assert registered["leadflow_consumer_lag"] == {"group", "topic", "partition"}
    assert registered["leadflow_sla_breaches_total"] == {"team"}
    assert registered["leadflow_dlq_depth"] == {"topic"}
    assert "leadflow_publish_duration_seconds" not in registered
    assert "leadflow_sla_breaches" not in registered


def test_every_alert_uses_only_metrics_and_labels_leadflow_registers() -> None:
    registered = registered_metrics()
    problems = {rule["alert"]: unknown_names(rule["expr"], registered) for rule in rules()}
    assert {alert: found for alert, found in problems.items() if found} == {}


def test_the_name_checker_reports_unknown_metrics_and_labels() -> None:
    registered = {"leadflow_x_total": frozenset({"topic"}), "up": frozenset()}
    expr = 'sum by (topic, team) (rate(leadflow_x_total{group="a"}[5m])) + leadflow_y'
    assert unknown_names(expr, registered) == [
        "metric leadflow_y",
        "label team",
        "label group of leadflow_x_total",
    ]
    assert unknown_names('max by (service) (up{job="leadflow"})', registered) == []


def test_alerts_cover_lag_dead_letters_server_errors_sla_breaches_and_down_targets() -> None:
    exprs = {rule["alert"]: " ".join(rule["expr"].split()) for rule in rules()}
    jobs = [job["job_name"] for job in load(CONFIG_FILE)["scrape_configs"]]

    def alerting(*needles: str) -> list[str]:
        return [name for name, expr in exprs.items() if all(n in expr for n in needles)]

    assert alerting("leadflow_consumer_lag", "delta(leadflow_consumer_lag")
    assert alerting("leadflow_dlq_depth", "> 0")
    assert alerting("leadflow_ingest_requests_total", 'status=~"5.."', "rate(")
    assert alerting("increase(leadflow_sla_breaches_total")
    assert alerting(f'up{{job="{jobs[0]}"}} == 0')


def test_every_alert_is_named_labelled_and_explained() -> None:
    found = rules()
    names = [rule.get("alert") for rule in found]
    assert all(names) and len(set(names)) == len(names), names
    for rule in found:
        name = rule["alert"]
        assert re.fullmatch(r"Leadflow[A-Z][A-Za-z]+", name), name
        assert set(rule) <= {"alert", "expr", "for", "labels", "annotations"}, name
        assert rule["labels"]["severity"] in SEVERITIES, name
        assert {"summary", "description"} <= set(rule["annotations"]), name
        assert DURATION.fullmatch(rule.get("for", "0s")), name


def test_every_alert_has_a_promtool_unit_test_that_fires_it() -> None:
    tests = load(RULES_TESTS)
    assert tests["rule_files"] == [RULES_FILE.name]
    fired = {
        case["alertname"]
        for test in tests["tests"]
        for case in test.get("alert_rule_test") or []
        if case.get("exp_alerts")
    }
    assert fired == {rule["alert"] for rule in rules()}


def test_prometheus_loads_the_rules_file_that_compose_mounts_beside_its_config() -> None:
    assert load(CONFIG_FILE)["rule_files"] == [RULES_FILE.name]
    volumes = load(COMPOSE_FILE)["services"]["prometheus"]["volumes"]
    mounts = {v.split(":")[1]: v.split(":")[0] for v in volumes if v.startswith(".")}
    config_dir = Path("/etc/prometheus/prometheus.yml").parent
    assert mounts[str(config_dir / RULES_FILE.name)] == "./deploy/prometheus/alerts.yml"
    assert mounts[str(config_dir / CONFIG_FILE.name)] == "./deploy/prometheus/prometheus.yml"


def promtool(*args: str) -> subprocess.CompletedProcess[str]:
    """promtool run in deploy/prometheus (where the files name each other)."""
    return subprocess.run(
        ["promtool", *args],
        cwd=PROMETHEUS_DIR,
        capture_output=True,
        text=True,
        timeout=60,
    )


@pytest.mark.skipif(shutil.which("promtool") is None, reason="promtool is not installed")
@pytest.mark.parametrize(
    "args",
    [
        ("check", "rules", RULES_FILE.name),
        ("check", "config", CONFIG_FILE.name),
        ("test", "rules", RULES_TESTS.name),
    ],
    ids=["check-rules", "check-config", "test-rules"],
)
def test_promtool_accepts_the_rules_and_config_and_their_tests_pass(args: tuple[str, ...]) -> None:
    result = promtool(*args)
    assert result.returncode == 0, result.stdout + result.stderr
