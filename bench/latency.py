"""Event -> owner latency at a fixed offered rate: ingest, scoring and routing, one process each.

    LEADFLOW_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python -m bench.latency --rate 300 --seconds 60

Several sender processes (so no one Python client is the limit; each sends rate/N events a
second on a fixed schedule, one new lead per event) post single events with client ids. The
latency of an event runs from its send to the `assigned_at` of the first assignment routing
made for its lead change (`assignments.cause_event_id`); leads still unassigned `--wait`
seconds after the last send are counted as such.
"""

from __future__ import annotations

import argparse
import asyncio
import multiprocessing
import os
import statistics
import sys
import tempfile
import time
from pathlib import Path

import httpx
from sqlalchemy import select

from bench.load import Server, add_broker_option, bench_database, service_env, start_broker
from leadflow.embedded import free_port
from services.routing.repository import assignments
from services.scoring.service import lead_change_id
from shared.db import as_utc, make_engine


def _send(port: int, rate: float, seconds: float, tag: str, queue: multiprocessing.Queue) -> None:
    """Post `rate` events a second for `seconds` on a fixed schedule (each send starts on time
    whatever the answers to earlier ones); put ({event_id: send time}, late sends) on the queue.
    """
    queue.put(asyncio.run(_send_async(port, rate, seconds, tag)))


async def _send_async(port: int, rate: float, seconds: float, tag: str):  # type: ignore[no-untyped-def]
    sent: dict[str, float] = {}
    late, failed = 0, [0]
    limits = httpx.Limits(max_connections=256, max_keepalive_connections=256)
    async with httpx.AsyncClient(
        base_url=f"http://127.0.0.1:{port}", timeout=30, limits=limits
    ) as client:

        async def post(event_id: str) -> None:
            body = {
                "type": "demo_requested",
                "event_id": event_id,
                "lead": {"email": f"{event_id}@acme.example", "job_title": "Head of IT"},
            }
            at = time.time()
            try:
                response = await client.post("/v1/events", json=body)
            except httpx.HTTPError:
                failed[0] += 1
                return
            if response.status_code == 202:
                sent[event_id] = at
            else:
                failed[0] += 1

        tasks = []
        start = time.monotonic()
        for i in range(int(rate * seconds)):
            wait = start + i / rate - time.monotonic()
            if wait > 0:
                await asyncio.sleep(wait)
            elif wait < -0.1:
                late += 1
            tasks.append(asyncio.create_task(post(f"lat-{tag}-{i}")))
        await asyncio.gather(*tasks)
    return sent, late, failed[0]


def _assigned(database_url: str, ids: set[str]) -> dict[str, float]:
    """event id -> epoch seconds of the first assignment it caused (through its lead change)."""
    by_change = {lead_change_id(i): i for i in ids}
    engine = make_engine(database_url)
    try:
        with engine.connect() as conn:
            rows = conn.execute(select(assignments.c.cause_event_id, assignments.c.assigned_at))
            first: dict[str, float] = {}
            for change_id, at in rows:
                event_id = by_change.get(change_id)
                if event_id is not None:
                    stamp = as_utc(at).timestamp()  # type: ignore[union-attr]
                    first[event_id] = min(first.get(event_id, stamp), stamp)
            return first
    finally:
        engine.dispose()


def main() -> None:
    """Start the three services, offer a fixed rate, and report assignment latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_option(parser)
    parser.add_argument("--rate", type=float, default=300.0, help="events a second offered")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--senders", type=int, default=4, help="sender processes")
    parser.add_argument("--wait", type=float, default=120.0, help="seconds to wait after")
    args = parser.parse_args()
    if not os.environ.get("LEADFLOW_BENCH_DATABASE_URL"):
        # Three processes writing one SQLite file lock each other out: not a figure.
        raise SystemExit("bench.latency needs PostgreSQL: set LEADFLOW_BENCH_DATABASE_URL")
    bin_dir = Path(sys.executable).parent
    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        broker = start_broker(args.broker, tmp)
        broker.start()
        try:
            db_url = bench_database(tmp)
            env = service_env(bootstrap=broker.bootstrap_servers, database_url=db_url)
            ports = {name: free_port() for name in ("ingest", "scoring", "routing")}
            servers = [
                Server(
                    [str(bin_dir / "leadflow"), name, "--port", str(port)],
                    port=port,
                    env=env,
                    log=tmp / f"{name}.log",
                )
                for name, port in ports.items()
            ]
            for server in servers:
                server.__enter__()
            try:
                time.sleep(5)  # consumers join their groups
                queue: multiprocessing.Queue = multiprocessing.Queue()
                tag = os.urandom(3).hex()
                senders = [
                    multiprocessing.Process(
                        target=_send,
                        args=(
                            ports["ingest"],
                            args.rate / args.senders,
                            args.seconds,
                            f"{tag}{n}",
                            queue,
                        ),
                    )
                    for n in range(args.senders)
                ]
                for p in senders:
                    p.start()
                sent: dict[str, float] = {}
                late = failed = 0
                for _ in senders:
                    part, behind, refused = queue.get(timeout=args.seconds + 300)
                    sent.update(part)
                    late += behind
                    failed += refused
                for p in senders:
                    p.join()
                ended = time.time()
                done: dict[str, float] = {}
                while time.time() - ended < args.wait:
                    done = _assigned(db_url, set(sent))
                    if len(done) == len(sent):
                        break
                    time.sleep(1)
            finally:
                for server in reversed(servers):
                    server.__exit__()
        finally:
            broker.stop()
    latencies = sorted(done[i] - sent[i] for i in done)
    print(
        f"broker: {args.broker}; offered {args.rate:g} events/s for {args.seconds:g} s by "
        f"{args.senders} senders ({late} sends more than 0.1 s behind schedule)"
    )
    print(
        f"accepted {len(sent)} ({failed} not accepted); assigned {len(done)} within "
        f"{args.wait:g} s after the last send"
    )
    if len(latencies) >= 2:
        q = statistics.quantiles(latencies, n=100)
        print(f"event -> owner: p50 {q[49]:.2f} s, p99 {q[98]:.2f} s, max {latencies[-1]:.2f} s")


if __name__ == "__main__":
    main()
