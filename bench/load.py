"""What the benchmarks share: `wrk` (C, from Debian's packages) with Lua scripts that make every
request unique, the servers under test, each in a process of its own, their broker, database
and environment.

A Python client on 2 cores saturates long before the server (it measured ~225-400 requests/s,
the server's own limit is far higher), so every HTTP figure here comes from wrk.
The exception is a fixed offered rate, which wrk cannot keep: `send_on_schedule` (below), a
light open-loop sender whose output shows whether it kept its schedule; and the pipeline of
ingest, scoring and routing that bench.latency and bench.burst run it against.
"""

from __future__ import annotations

import argparse
import asyncio
import contextlib
import multiprocessing
import os
import re
import secrets
import shutil
import signal
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Callable, Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import orjson
from kafka import KafkaAdminClient
from kafka.errors import KafkaError
from sqlalchemy import text

from leadflow.embedded import EmbeddedBroker, free_port, port_is_open, resolve_tansu_bin
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
    the broker, the database, quiet logs, no auth and no rate limits (no baseline has them), and
    a secret key of its own (the single-service commands refuse the built-in one)."""
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    env.update(
        LEADFLOW_SECRET_KEY=secrets.token_hex(32),
        LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=bootstrap,
        LEADFLOW_DATABASE_URL=database_url,
        LEADFLOW_LOG_LEVEL="WARNING",
        LEADFLOW_AUTH="off",
        LEADFLOW_RATE_LIMIT_KEY_PER_S="0",
        LEADFLOW_RATE_LIMIT_SOURCE_PER_S="0",
        **extra,
    )
    return env


# --- A fixed offered rate, and the pipeline under it -------------------------------------------
#
# wrk sends as fast as its connections allow; a fixed schedule, where every send starts on time
# whatever the answers to earlier ones, needs a client of its own. It is plain asyncio (uvloop)
# over keep-alive HTTP/1.1 connections, with every request's bytes made before the first is
# due, so a send is a write and a read: about 0.2-0.3 ms of CPU (300 sends/s: ~10 % of a core).
# It counts as on schedule with up to 1 % of its sends more than 0.1 s late.


@dataclass(frozen=True)
class Sent:
    """One request of a fixed schedule (epoch seconds): when it was due, written, answered."""

    key: str
    due: float
    began: float  # when the generator got to it: behind `due` only if the generator was late
    written: float | None  # None: never written (no connection); after `began` by the connect
    answered: float | None  # None: no answer within the timeout, or the connection failed
    status: int  # 0 without an answer
    accepted: int  # the answer's "accepted" count


def http_request(path: str, body: bytes) -> bytes:
    """The bytes of one keep-alive HTTP/1.1 POST of a JSON body to 127.0.0.1."""
    head = (
        f"POST {path} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
        f"Content-Length: {len(body)}\r\n\r\n"
    )
    return head.encode() + body


async def _answer(reader: asyncio.StreamReader) -> tuple[int, bytes]:
    head = await reader.readuntil(b"\r\n\r\n")
    length = re.search(rb"(?i)\r\ncontent-length:\s*(\d+)", head)
    if length is None:
        raise ConnectionError("an answer without Content-Length")
    return int(head.split(None, 2)[1]), await reader.readexactly(int(length.group(1)))


async def _send_on_schedule(
    port: int, due: list[tuple[str, float, bytes]], timeout: float, max_connections: int
) -> list[Sent]:
    idle: list[tuple[asyncio.StreamReader, asyncio.StreamWriter, float]] = []
    slots = asyncio.Semaphore(max_connections)
    results: list[Sent] = []

    async def one(key: str, at: float, payload: bytes) -> None:
        began, written, answered, writer = time.time(), None, None, None
        status = accepted = 0
        async with slots:
            while idle and time.monotonic() - idle[-1][2] > 4:  # uvicorn drops them at 5 s
                idle.pop()[1].close()
            try:
                if idle:
                    reader, writer, _ = idle.pop()
                else:
                    reader, writer = await asyncio.open_connection("127.0.0.1", port)
                written = time.time()
                writer.write(payload)
                async with asyncio.timeout(timeout):
                    status, body = await _answer(reader)
                answered = time.time()
                if 200 <= status < 300:
                    accepted = int(orjson.loads(body).get("accepted", 0))
                idle.append((reader, writer, time.monotonic()))
            except (TimeoutError, OSError, EOFError, ValueError, IndexError):
                if writer is not None:
                    writer.close()
        results.append(Sent(key, at, began, written, answered, status, accepted))

    tasks = []
    for key, at, payload in due:
        if (wait := at - time.time()) > 0:
            await asyncio.sleep(wait)
        tasks.append(asyncio.create_task(one(key, at, payload)))
    await asyncio.gather(*tasks)
    for _, writer, _ in idle:
        writer.close()
    return results


def _sender(
    port: int,
    due: list[tuple[str, float, bytes]],
    timeout: float,
    max_connections: int,
    queue: multiprocessing.Queue,
) -> None:
    # Real-time priority (root only, else skipped): on 2 cores busy with the services, the
    # scheduler left a sender at nice 0 or -10 waiting up to 1.5 s (532 of 18,000 sends late at
    # 300/s); a 3 ms sleep loop overslept by up to 83 ms at nice 0 and 2 ms under SCHED_FIFO.
    # The senders sleep between sends, so they take the services no more CPU than they use.
    with contextlib.suppress(OSError, AttributeError):
        os.sched_setscheduler(0, os.SCHED_FIFO, os.sched_param(10))
    try:  # uvicorn[standard] brings uvloop, a cheaper event loop
        from uvloop import run
    except ImportError:
        run = asyncio.run  # type: ignore[assignment]
    queue.put(run(_send_on_schedule(port, due, timeout, max_connections)))


def send_on_schedule(
    *,
    port: int,
    requests: Sequence[tuple[str, bytes]],
    rate: float,
    processes: int = 2,
    timeout: float = 10.0,
    max_connections: int = 2048,
    started: Callable[[float], object] | None = None,
) -> list[Sent]:
    """POST request i (key, full HTTP bytes) at start + i / rate, whatever the answers to earlier
    ones, from `processes` processes taking turns; every request gets `timeout` s to answer.
    `started(start)` runs once the senders are forked (threads are safe to begin there)."""
    start = time.time() + 1.0  # every process ready before the first is due
    shares: list[list[tuple[str, float, bytes]]] = [[] for _ in range(processes)]
    for i, (key, payload) in enumerate(requests):
        shares[i % processes].append((key, start + i / rate, payload))
    queue: multiprocessing.Queue = multiprocessing.get_context("fork").Queue()
    workers = [
        multiprocessing.get_context("fork").Process(
            target=_sender, args=(port, share, timeout, max_connections, queue)
        )
        for share in shares
    ]
    for worker in workers:
        worker.start()
    if started is not None:
        started(start)
    sent: list[Sent] = []
    bound = len(requests) / rate + timeout + 60
    for _ in workers:
        sent.extend(queue.get(timeout=bound))
    for worker in workers:
        worker.join()
    return sorted(sent, key=lambda s: s.due)


def schedule_line(
    sent: Sequence[Sent], *, rate: float, unit: str = "requests", late_after: float = 0.1
) -> str:
    """How well the generator kept its schedule: achieved rate, late sends, how far behind; and
    how many sends waited for a connection (the server accepting slowly, not the generator)."""
    behind = sorted(s.began - s.due for s in sent)
    late = sum(1 for b in behind if b > late_after)
    waited = sum(1 for s in sent if s.written is None or s.written - s.began > late_after)
    span = max(s.began for s in sent) - sent[0].due + 1 / rate if sent else 0.0
    achieved = len(sent) / span if span else 0.0
    p99 = behind[min(len(behind) - 1, int(len(behind) * 0.99))] if behind else 0.0
    kept = achieved >= 0.99 * rate and late <= 0.01 * len(sent)
    verdict = "kept its schedule" if kept else "FELL BEHIND: less than the stated rate was offered"
    return (
        f"generator: offered {rate:,.4g} {unit}/s for {len(sent):,} sends, achieved {achieved:,.4g}"
        f"/s; {late} sends more than {late_after:g} s late (p99 {p99 * 1000:.0f} ms, max "
        f"{(behind[-1] if behind else 0) * 1000:.0f} ms): {verdict}; {waited} waited more than "
        f"{late_after:g} s for a connection to the server"
    )


@dataclass(frozen=True)
class Pipeline:
    """ingest, scoring and routing running, one process each, on a broker and a database."""

    broker: Any
    database_url: str
    ports: dict[str, int]
    servers: dict[str, Server]

    def exited(self) -> list[str]:
        """The services whose process has ended (none should while the bench runs)."""
        return [n for n, s in self.servers.items() if s.process and s.process.poll() is not None]

    def log_tails(self, lines: int = 12, *, errors_only: bool = False) -> str:
        """The last lines of every service log with something in it; with `errors_only`, of its
        errors and tracebacks alone (the startup warnings every run has are left out)."""
        out = []
        for name, server in self.servers.items():
            text = server.log.read_text(errors="replace") if server.log.exists() else ""
            kept = [line for line in text.splitlines() if not errors_only or _ERROR.search(line)]
            if kept:
                out.append(f"--- {name} log, last lines:\n" + "\n".join(kept[-lines:]))
        return "\n".join(out)


_ERROR = re.compile(r'"level":\s*"(ERROR|CRITICAL)"|^Traceback|^\w+(Error|Exception)\b')


@contextlib.contextmanager
def pipeline(*, broker: str, tmp: Path, **extra_env: str) -> Iterator[Pipeline]:
    """Start a broker, a migrated database and the three services; stop them all after, printing
    the log tails of any service that ended on its own."""
    bin_dir = Path(sys.executable).parent
    running = start_broker(broker, tmp)
    running.start()
    try:
        db_url = bench_database(tmp)
        env = service_env(bootstrap=running.bootstrap_servers, database_url=db_url, **extra_env)
        ports = {name: free_port() for name in ("ingest", "scoring", "routing")}
        servers = {
            name: Server(
                [str(bin_dir / "leadflow"), name, "--port", str(port)],
                port=port,
                env=env,
                log=tmp / f"{name}.log",
            )
            for name, port in ports.items()
        }
        with contextlib.ExitStack() as stack:
            for server in servers.values():
                stack.enter_context(server)
            done = Pipeline(broker=running, database_url=db_url, ports=ports, servers=servers)
            try:
                yield done
            finally:
                if done.exited():
                    print(f"bench: {', '.join(done.exited())} ended during the run")
                    print(done.log_tails())
    finally:
        running.stop()


def wait_for_groups(*, bootstrap: str, groups: Sequence[str], timeout: float = 60.0) -> bool:
    """Wait until every consumer group is Stable with a member; False if not within timeout."""
    admin = KafkaAdminClient(bootstrap_servers=bootstrap)
    deadline = time.monotonic() + timeout
    try:
        while time.monotonic() < deadline:
            with contextlib.suppress(KafkaError):
                found = admin.describe_groups(list(groups))
                if all(
                    found.get(g, {}).get("group_state") == "Stable" and found[g].get("members")
                    for g in groups
                ):
                    return True
            time.sleep(0.2)
        return False
    finally:
        admin.close()
