"""The compose gateway (deploy/gateway/nginx.conf) proxies every public route of each service's
app to a service that serves it, and nothing to one that does not: the table cannot drift.

No container runs here: the config is parsed, its locations chosen as nginx chooses them (exact,
then the longest prefix unless a regex matches first), and each request checked against the
routes of the apps `leadflow.app.create_app` builds for ingest, scoring and routing.
"""

from __future__ import annotations

import json
import re
import shutil
import subprocess
from dataclasses import dataclass, field
from functools import cache
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import pytest
import yaml
from fastapi import routing
from sqlalchemy import create_engine
from sqlalchemy.orm import sessionmaker

from leadflow.app import create_app
from shared.config import Settings
from shared.http import Resources, problem_body

ROOT = Path(__file__).resolve().parents[2]
COMPOSE_FILE = ROOT / "docker-compose.yml"
GATEWAY_CONF = ROOT / "deploy" / "gateway" / "nginx.conf"
APP_SERVICES = ("ingest", "scoring", "routing")
# Per-process paths the gateway does not pass through as they are: its own /healthz answers for
# itself, each service's probes are under /services/<name>/, /metrics is scraped on the compose
# network (it has no auth), and each service's docs cover only its own routes.
NOT_PROXIED = {"/healthz", "/readyz", "/metrics", "/docs", "/docs/oauth2-redirect", "/redoc"}
NOT_PROXIED |= {"/openapi.json"}
PROBES = ("healthz", "readyz")
SAMPLE = "sample-1"


# --- the nginx config -------------------------------------------------------------------------


@dataclass
class Directive:
    """One nginx directive: its name, arguments and, for a block, the directives inside."""

    name: str
    args: list[str]
    block: list[Directive] | None = None

    def first(self, name: str) -> Directive | None:
        """The first directive `name` directly inside this block."""
        return next((d for d in self.block or [] if d.name == name), None)

    def all(self, name: str) -> list[Directive]:
        """Every directive `name` directly inside this block."""
        return [d for d in self.block or [] if d.name == name]


_TOKEN = re.compile(
    r"""\s+|#[^\n]*|'((?:\\.|[^'\\])*)'|"((?:\\.|[^"\\])*)"|([{};])|([^\s{};'"#]+)"""
)


def tokens(text: str) -> list[str]:
    """nginx config tokens: words and quoted strings (unquoted), `{`, `}` and `;`."""
    found, pos = [], 0
    while pos < len(text):
        match = _TOKEN.match(text, pos)
        assert match is not None, f"cannot read the config at {text[pos : pos + 40]!r}"
        single, double, punct, word = match.groups()
        quoted = single if single is not None else double
        if quoted is not None:
            found.append(re.sub(r"\\(.)", r"\1", quoted))
        elif punct or word:
            found.append(punct or word)
        pos = match.end()
    return found


def parse(text: str) -> Directive:
    """The config as a tree of directives under a root block named `main`."""
    stack = [Directive("main", [], [])]
    words: list[str] = []
    for token in tokens(text):
        if token == ";":
            stack[-1].block.append(Directive(words[0], words[1:]))  # type: ignore[union-attr]
            words = []
        elif token == "{":
            block = Directive(words[0], words[1:], [])
            stack[-1].block.append(block)  # type: ignore[union-attr]
            stack.append(block)
            words = []
        elif token == "}":
            assert not words, f"directive {words} is not ended by ';'"
            stack.pop()
        else:
            words.append(token)
    assert len(stack) == 1 and not words, "unbalanced braces"
    return stack[0]


@dataclass
class Location:
    """A `location` of the server: how it matches, and what it does."""

    modifier: str  # "=", "^~", "~", "~*" or "" (a prefix)
    pattern: str
    directives: Directive

    @property
    def label(self) -> str:
        """How the config writes it."""
        return f"location {self.modifier} {self.pattern}".replace("  ", " ")


@dataclass
class Server:
    """The gateway's server block: its port, variables and locations."""

    listen: int
    variables: dict[str, str]
    locations: list[Location] = field(default_factory=list)
    body_limit: str = "1m"


def read_server(text: str) -> Server:
    """The one `server` of the config's `http` block."""
    http = parse(text).first("http")
    assert http is not None, "no http block"
    (server,) = http.all("server")
    listen = server.first("listen")
    assert listen is not None, "the server listens nowhere"
    limit = server.first("client_max_body_size") or http.first("client_max_body_size")
    result = Server(
        listen=int(listen.args[0].rpartition(":")[2]),
        variables={d.args[0]: d.args[1] for d in server.all("set")},
        body_limit=limit.args[0] if limit else "1m",
    )
    for location in server.all("location"):
        modifier, pattern = location.args if len(location.args) == 2 else ("", location.args[0])
        result.locations.append(Location(modifier, pattern, location))
    return result


def choose(server: Server, path: str) -> Location | None:
    """The location nginx picks for `path`: an exact match; else the longest prefix if it is
    `^~`; else the first regex (in config order) that matches; else the longest prefix."""
    named = [loc for loc in server.locations if not loc.pattern.startswith("@")]
    for loc in named:
        if loc.modifier == "=" and loc.pattern == path:
            return loc
    prefixes = [loc for loc in named if loc.modifier in ("", "^~") and path.startswith(loc.pattern)]
    longest = max(prefixes, key=lambda loc: len(loc.pattern), default=None)
    if longest is not None and longest.modifier == "^~":
        return longest
    for loc in named:
        flags = re.IGNORECASE if loc.modifier == "~*" else 0
        if loc.modifier in ("~", "~*") and re.search(loc.pattern, path, flags):
            return loc
    return longest


def proxied(server: Server, location: Location, path: str) -> tuple[str, int, str] | None:
    """(host, port, path) the location sends `path` to; None if it answers itself."""
    proxy = location.directives.first("proxy_pass")
    if proxy is None:
        return None
    target = proxy.args[0]
    target = server.variables.get(target, target)
    url = urlsplit(target)
    # With a URI (even `/`), nginx would replace part of the path: not modelled here.
    assert not url.path, f"{location.label}: proxy_pass {target} has a URI"
    for rewrite in location.directives.all("rewrite"):
        regex, replacement, *flags = rewrite.args
        assert flags == ["break"], f"{location.label}: only `rewrite ... break` is modelled"
        path = re.sub(regex, re.sub(r"\$(\d)", r"\\\1", replacement), path)
    assert url.hostname and url.port, f"{location.label}: proxy_pass {target} names no host:port"
    return url.hostname, url.port, path


# --- the apps ---------------------------------------------------------------------------------


@dataclass(frozen=True)
class Route:
    """One method and path template an app serves."""

    method: str
    path: str

    def matches(self, method: str, path: str) -> bool:
        """Whether a request `method path` is this route's."""
        pattern = re.sub(r"\{\w+:path\}", ".+", self.path)
        pattern = re.sub(r"\{\w+(:\w+)?\}", "[^/]+", pattern)
        return self.method == method and re.fullmatch(pattern, path) is not None

    @property
    def sample(self) -> str:
        """A concrete path of the route, every parameter filled in."""
        return re.sub(r"\{\w+(:\w+)?\}", SAMPLE, self.path)


@cache
def service_routes() -> dict[str, frozenset[Route]]:
    """Every route each service's app serves, as `leadflow <service>` builds it."""
    engine = create_engine("sqlite://")
    resources = Resources(settings=Settings(), engine=engine, sessions=sessionmaker(engine))
    served = {}
    for name in APP_SERVICES:
        app = create_app(resources=resources, services=[name])
        # Recent FastAPI includes routers lazily: walk them as its OpenAPI generator does.
        contexts = getattr(routing, "iter_route_contexts", iter)(app.routes)
        served[name] = frozenset(
            Route(method, context.path)
            for context in contexts
            for method in (getattr(context, "methods", None) or ())
            if method != "HEAD"
        )
    engine.dispose()
    return served


def public_routes(served: dict[str, frozenset[Route]]) -> set[Route]:
    """The routes clients reach through the gateway: all but the per-process ones."""
    return {r for routes in served.values() for r in routes if r.path not in NOT_PROXIED}


def compose_upstreams() -> dict[tuple[str, int], str]:
    """(host, port) -> service, for each app service of the compose file and its `--port`."""
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    return {(name, command_port(services[name]["command"])): name for name in APP_SERVICES}


def command_port(command: list[str]) -> int:
    """The port a `leadflow <service> --port N` command serves on (8000 if none is given)."""
    for i, word in enumerate(command):
        if word == "--port":
            return int(command[i + 1])
        if word.startswith("--port="):
            return int(word.split("=", 1)[1])
    return int(Settings.model_fields["http_port"].default)


def misrouted(
    server: Server,
    served: dict[str, frozenset[Route]],
    upstreams: dict[tuple[str, int], str],
    requests: list[tuple[str, str]],
) -> list[str]:
    """`METHOD path: why` for each request the gateway does not proxy to a service serving it."""
    problems = []
    for method, path in requests:
        location = choose(server, path)
        target = proxied(server, location, path) if location else None
        if location is None or target is None:
            problems.append(f"{method} {path}: not proxied")
            continue
        host, port, upstream_path = target
        service = upstreams.get((host, port))
        if service is None:
            problems.append(f"{method} {path}: {host}:{port} is no app service in compose")
        elif not any(r.matches(method, upstream_path) for r in served[service]):
            problems.append(f"{method} {path}: {service} does not serve {upstream_path}")
    return problems


def destination(server: Server, path: str) -> tuple[str, str] | None:
    """(compose service, path) the gateway proxies `path` to; None if it does not."""
    location = choose(server, path)
    target = proxied(server, location, path) if location else None
    if target is None:
        return None
    return compose_upstreams().get(target[:2], f"{target[0]}:{target[1]}"), target[2]


def status(server: Server, path: str) -> str | None:
    """The status the gateway answers `path` with itself (`return`); None if it proxies."""
    location = choose(server, path)
    answer = location.directives.first("return") if location else None
    return answer.args[0] if answer else None


def dead_locations(server: Server, requests: list[tuple[str, str]]) -> list[str]:
    """Proxying locations no request reaches (a route that moved or went)."""
    reached = {id(choose(server, path)) for _, path in requests}
    return [
        loc.label
        for loc in server.locations
        if loc.directives.first("proxy_pass") and id(loc) not in reached
    ]


def gateway_requests(served: dict[str, frozenset[Route]]) -> list[tuple[str, str]]:
    """A request for every public route, and for each service's probes under /services/."""
    routes = sorted(public_routes(served), key=lambda r: (r.path, r.method))
    probes = [("GET", f"/services/{s}/{p}") for s in APP_SERVICES for p in PROBES]
    return [(r.method, r.sample) for r in routes] + probes


# --- tests --------------------------------------------------------------------------------------


def test_every_public_route_of_every_service_is_proxied_to_a_service_that_serves_it() -> None:
    served = service_routes()
    requests = gateway_requests(served)
    assert len(requests) > 40
    assert {"POST /v1/events", "GET /v1/leads/{lead_id}", "GET /v1/unsubscribe/{token}"} <= {
        f"{r.method} {r.path}" for r in public_routes(served)
    }
    server = read_server(GATEWAY_CONF.read_text())
    assert misrouted(server, served, compose_upstreams(), requests) == []


def test_every_proxying_location_is_reached_by_some_route() -> None:
    server = read_server(GATEWAY_CONF.read_text())
    assert dead_locations(server, gateway_requests(service_routes())) == []


def test_a_leads_feedback_goes_to_routing_and_the_lead_itself_to_scoring() -> None:
    server = read_server(GATEWAY_CONF.read_text())
    assert destination(server, "/v1/leads/l1/feedback") == ("routing", "/v1/leads/l1/feedback")
    assert destination(server, "/v1/leads/l1") == ("scoring", "/v1/leads/l1")
    assert destination(server, "/v1/leads/l1/timeline") == ("scoring", "/v1/leads/l1/timeline")


@pytest.mark.parametrize("service", APP_SERVICES)
def test_each_services_probes_are_under_its_name(service: str) -> None:
    server = read_server(GATEWAY_CONF.read_text())
    for probe in PROBES:
        assert destination(server, f"/services/{service}/{probe}") == (service, f"/{probe}")
    assert destination(server, f"/services/{service}/metrics") is None


def test_the_gateway_answers_healthz_itself_and_keeps_metrics_off_the_public_port() -> None:
    server = read_server(GATEWAY_CONF.read_text())
    assert status(server, "/healthz") == "200"
    for path in ("/metrics", "/readyz", "/openapi.json", "/docs", "/nope"):
        assert (destination(server, path), status(server, path)) == (None, "404"), path


def test_the_gateways_own_errors_are_problems_as_leadflows() -> None:
    """What the gateway answers itself (no such path, over its body limit, a service not
    reachable) is a problem with leadflow's type, title and code, but no `instance`."""
    server = read_server(GATEWAY_CONF.read_text())
    named = {loc.pattern: loc for loc in server.locations if loc.pattern.startswith("@")}
    answers = {"not_found": choose(server, "/nope")}
    answers |= {"payload_too_large": named["@too_large"], "unavailable": named["@unavailable"]}
    for code, location in answers.items():
        assert location is not None
        default_type = location.directives.first("default_type")
        assert default_type is not None and default_type.args == ["application/problem+json"]
        answer = location.directives.first("return")
        assert answer is not None
        status, text = answer.args
        body = json.loads(text)
        expected = problem_body(int(status), code, body["detail"], instance="")
        del expected["instance"]
        assert body == expected
    retry_after = named["@unavailable"].directives.first("add_header")
    assert retry_after is not None and retry_after.args == ["Retry-After", "5", "always"]


def test_checkers_report_a_missing_route_a_wrong_service_and_a_dead_location() -> None:
    served = {
        "ingest": frozenset({Route("POST", "/v1/events")}),
        "scoring": frozenset({Route("GET", "/v1/leads/{lead_id}")}),
        "routing": frozenset({Route("POST", "/v1/leads/{lead_id}/feedback")}),
    }
    config = """
        http { server { listen 8000; set $s http://scoring:8000; set $r http://routing:8000;
            location /v1/leads/ { proxy_pass $s; }
            location /v1/teams/ { proxy_pass $r; }
            location ~ ^/v1/events$ { proxy_pass $r; }
        } }
    """
    server = read_server(config)
    upstreams = {(name, 8000): name for name in APP_SERVICES}
    requests = [(r.method, r.sample) for routes in served.values() for r in routes]
    assert sorted(misrouted(server, served, upstreams, requests)) == [
        "POST /v1/events: routing does not serve /v1/events",
        f"POST /v1/leads/{SAMPLE}/feedback: scoring does not serve /v1/leads/{SAMPLE}/feedback",
    ]
    assert dead_locations(server, requests) == ["location /v1/teams/"]
    assert misrouted(server, served, {}, [("GET", "/v1/leads/x")]) == [
        "GET /v1/leads/x: scoring:8000 is no app service in compose"
    ]
    assert misrouted(server, served, upstreams, [("GET", "/v1/funnel")]) == [
        "GET /v1/funnel: not proxied"
    ]


def test_location_choice_follows_nginx_exact_then_regex_then_longest_prefix() -> None:
    server = read_server(
        """http { server { listen 80;
            location / { return 404; }
            location /a/ { return 200; }
            location /a/b/ { return 201; }
            location ^~ /s/ { return 202; }
            location ~ ^/a/.+/x$ { return 203; }
            location ~ ^/s/ { return 204; }
            location = /a/b/x { return 205; }
        } }"""
    )
    paths = ("/q", "/a/1", "/a/b/1", "/a/b/x", "/a/c/x", "/s/x")
    assert [status(server, p) for p in paths] == ["404", "200", "201", "205", "203", "202"]


def test_links_leadflow_builds_on_its_public_url_reach_a_service_through_the_gateway() -> None:
    links = {
        match
        for path in (ROOT / "services").rglob("*.py")
        for match in re.findall(r"public_url\}(/[^\"'\s]*)", path.read_text())
    }
    assert {"/v1/unsubscribe/{token}", "/v1/teams/{row.team}/tasks"} <= links
    requests = [("GET", re.sub(r"\{[^}]+\}", SAMPLE, link)) for link in sorted(links)]
    server = read_server(GATEWAY_CONF.read_text())
    assert misrouted(server, service_routes(), compose_upstreams(), requests) == []


def test_public_url_is_the_gateways_published_port() -> None:
    services = yaml.safe_load(COMPOSE_FILE.read_text())["services"]
    server = read_server(GATEWAY_CONF.read_text())
    published = {
        int(host_port): int(container_port)
        for entry in services["gateway"]["ports"]
        for *_, host_port, container_port in [str(entry).split(":")]
    }
    assert list(published.values()) == [server.listen]
    for name in APP_SERVICES:
        raw = services[name]["environment"]["LEADFLOW_PUBLIC_URL"]
        default = re.fullmatch(r"\$\{LEADFLOW_PUBLIC_URL:-([^}]+)\}", raw)
        assert default, f"{name}: LEADFLOW_PUBLIC_URL={raw!r} cannot be set from the host"
        url = urlsplit(default[1])
        assert (url.scheme, url.hostname, url.port) == ("http", "localhost", *published)


def test_the_gateway_lets_leadflow_answer_bodies_up_to_its_own_limit() -> None:
    units = {"k": 1024, "m": 1024**2, "g": 1024**3}
    limit = read_server(GATEWAY_CONF.read_text()).body_limit.lower()
    size = int(limit[:-1]) * units[limit[-1]] if limit[-1] in units else int(limit)
    assert size > Settings().max_body_bytes


def test_the_gateway_container_mounts_this_config_and_waits_for_ready_services() -> None:
    gateway: dict[str, Any] = yaml.safe_load(COMPOSE_FILE.read_text())["services"]["gateway"]
    assert "./deploy/gateway/nginx.conf:/etc/nginx/nginx.conf:ro" in gateway["volumes"]
    assert gateway["depends_on"] == {s: {"condition": "service_healthy"} for s in APP_SERVICES}
    assert any("/healthz" in word for word in gateway["healthcheck"]["test"])


@pytest.mark.skipif(shutil.which("nginx") is None, reason="nginx is not installed")
def test_nginx_accepts_the_config(tmp_path: Path) -> None:
    result = subprocess.run(
        ["nginx", "-t", "-p", str(tmp_path), "-c", str(GATEWAY_CONF)],
        capture_output=True,
        text=True,
        timeout=30,
    )
    assert result.returncode == 0, result.stderr
