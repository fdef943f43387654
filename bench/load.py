"""What the benchmarks share: `wrk` (C, from Debian's packages) with Lua scripts that make every
request unique, the servers under test, each in a process of its own, their broker, database
and environment.

A Python client on 2 cores saturates long before the server (it measured ~225-400 requests/s,
the server's own limit is far higher), so every HTTP figure here comes from wrk.
"""

from __future__ import annotations

import argparse
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from dataclasses import dataclass
from pathlib import Path

from sqlalchemy import text

from leadflow.embedded import EmbeddedBroker, port_is_open, resolve_tansu_bin
from shared.db import make_engine, upgrade

# Each wrk thread numbers its requests; with the thread's number and a run tag, ids are unique.
_PRELUDE_LUA = """
local counter = 0
local threads = 0
function setup(thread)
  thread:set("tid", threads)
  threads = threads + 1
end
"""

# Every request a new event; with ids, each id is new too.
_SINGLE_LUA = """
function request()
  counter = counter + 1
  local id = ""
  if WITH_IDS then
    id = string.format('"event_id":"%s-%d-%d",', RUN, tid, counter)
  end
  local body = string.format(
    '{"type":"page_view",%s"lead":{"email":"w%d-%d@acme.example"},' ..
    '"properties":{"url":"https://seller.example/pricing"}}', id, tid, counter % 2000)
  return wrk.format("POST", "/v1/events", {["Content-Type"] = "application/json"}, body)
end
"""

_BATCH_LUA = """
function request()
  local parts = {}
  for i = 1, BATCH do
    counter = counter + 1
    parts[i] = string.format(
      '{"type":"page_view","event_id":"%s-%d-%d","lead":{"email":"w%d-%d@acme.example"},' ..
      '"properties":{"url":"https://seller.example/pricing"}}', RUN, tid, counter, tid,
      counter % 2000)
  end
  local body = "[" .. table.concat(parts, ",") .. "]"
  return wrk.format("POST", "/v1/events/batch", {["Content-Type"] = "application/json"}, body)
end
"""


@dataclass(frozen=True)
class WrkResult:
    """What one wrk run measured."""

    requests_per_s: float
    p50_ms: float
    p99_ms: float
    requests: int
    errors: int  # non-2xx answers plus socket errors: a run with any is not a measurement


def wrk_binary() -> str:
    """The wrk binary; installs it from Debian's packages where missing and we are root."""
    found = shutil.which("wrk")
    if found:
        return found
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print("bench: installing wrk (apt-get install -y wrk)", flush=True)
        subprocess.run(["apt-get", "install", "-y", "-qq", "wrk"], check=False)
        found = shutil.which("wrk")
    if not found:
        raise SystemExit("bench: needs wrk, the HTTP load generator: apt-get install wrk")
    return found


def _ms(text: str) -> float:
    match = re.fullmatch(r"([\d.]+)(us|ms|s|m)", text)
    if match is None:
        raise ValueError(f"not a wrk duration: {text!r}")
    value, unit = float(match.group(1)), match.group(2)
    return value * {"us": 0.001, "ms": 1.0, "s": 1000.0, "m": 60_000.0}[unit]


_REPORT_LUA = """
function done(summary, latency, requests)
  io.write(string.format("LF p50=%d p99=%d requests=%d non2xx=%d errors=%d\\n",
    latency:percentile(50), latency:percentile(99), summary.requests,
    summary.errors.status, summary.errors.connect + summary.errors.read +
    summary.errors.write + summary.errors.timeout))
end
"""


def run_wrk(
    *,
    port: int,
    batch: int | None = None,
    with_ids: bool = False,
    seconds: float = 10.0,
    connections: int = 64,
    threads: int = 2,
) -> WrkResult:
    """Drive 127.0.0.1:port with unique events for `seconds`; single requests, or arrays of
    `batch` events to /v1/events/batch."""
    run = os.urandom(4).hex()
    if batch:
        script = f'RUN = "{run}"\nBATCH = {batch}\n' + _PRELUDE_LUA + _BATCH_LUA + _REPORT_LUA
    else:
        flag = "true" if with_ids else "false"
        script = f'RUN = "{run}"\nWITH_IDS = {flag}\n' + _PRELUDE_LUA + _SINGLE_LUA + _REPORT_LUA
    with tempfile.NamedTemporaryFile("w", suffix=".lua", delete=False) as handle:
        handle.write(script)
        path = handle.name
    try:
        out = subprocess.run(
            [
                wrk_binary(),
                f"-t{threads}",
                f"-c{connections}",
                f"-d{seconds:g}s",
                "--timeout",
                "10s",
                "-s",
                path,
                f"http://127.0.0.1:{port}",
            ],
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    finally:
        Path(path).unlink(missing_ok=True)
    rate = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))  # type: ignore[union-attr]
    report = re.search(r"LF p50=(\d+) p99=(\d+) requests=(\d+) non2xx=(\d+) errors=(\d+)", out)
    assert report is not None, out
    p50_us, p99_us, requests, non2xx, errors = (int(g) for g in report.groups())
    return WrkResult(
        requests_per_s=rate,
        p50_ms=p50_us / 1000,
        p99_ms=p99_us / 1000,
        requests=requests,
        errors=non2xx + errors,
    )


class Server:
    """A server in its own process, so the load generator never shares its GIL."""

    def __init__(self, argv: list[str], *, port: int, env: dict[str, str], log: Path) -> None:
        self.port, self.argv, self.env, self.log = port, argv, env, log
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        with open(self.log, "ab") as out:
            self.process = subprocess.Popen(
                self.argv, env=self.env, stdout=out, stderr=subprocess.STDOUT
            )
        deadline = time.monotonic() + 60
        while not port_is_open("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {self.argv} did not start; see {self.log}")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        try:
            self.process.wait(30)
        except subprocess.TimeoutExpired:
            self.process.kill()
            self.process.wait(10)


def start_broker(kind: str, tmp: Path):  # type: ignore[no-untyped-def]
    """A broker of `kind`, not started yet, logging into `tmp`."""
    if kind == "kafka":
        from tests.kafka.broker import KafkaBroker

        return KafkaBroker(log_path=tmp / "kafka.log")
    return EmbeddedBroker(binary=resolve_tansu_bin(None), log_path=tmp / "tansu.log")


def bench_database(tmp: Path) -> str:
    """A migrated database: a fresh schema in LEADFLOW_BENCH_DATABASE_URL, else SQLite."""
    base = os.environ.get("LEADFLOW_BENCH_DATABASE_URL")
    if not base:
        url = f"sqlite:///{tmp}/bench.db"
        upgrade(url)
        return url
    from sqlalchemy.engine import make_url

    schema = f"lf_bench_{uuid.uuid4().hex[:8]}"
    engine = make_engine(base)
    with engine.begin() as conn:
        conn.execute(text(f'CREATE SCHEMA "{schema}"'))
    engine.dispose()
    url = make_url(base).update_query_dict({"options": f"-csearch_path={schema}"})
    rendered = url.render_as_string(hide_password=False)
    upgrade(rendered)
    return rendered


def add_broker_option(parser: argparse.ArgumentParser) -> None:
    """--broker: Apache Kafka when Java and Maven are here (as in CI), else Tansu."""
    default = "kafka" if shutil.which("java") and shutil.which("mvn") else "tansu"
    parser.add_argument("--broker", choices=("kafka", "tansu"), default=default)


def service_env(*, bootstrap: str, database_url: str, **extra: str) -> dict[str, str]:
    """The environment of a leadflow service under test: this one without LEADFLOW_*, plus
    the broker, the database, quiet logs, no auth and no rate limits (no baseline has them)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(
        LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        LEADFLOW_DATABASE_URL=database_url,
        LEADFLOW_LOG_LEVEL="WARNING",
        LEADFLOW_AUTH="off",
        LEADFLOW_RATE_LIMIT_KEY_PER_S="0",
        LEADFLOW_RATE_LIMIT_SOURCE_PER_S="0",
        **extra,
    )
    return env
