"""Ingest throughput: `POST /v1/events` through real uvicorn and Tansu, against a baseline.

The baseline is a bare FastAPI handler that validates the same body and answers 202 without
publishing, served by the same uvicorn on the same machine in the same run; the result is the
ratio of the two rates, so it does not depend on how fast this machine happens to be.

    make bench            # or: .venv/bin/python -m bench.ingest --requests 3000 --concurrency 64
                          #     .venv/bin/python -m bench.ingest --workers 2
"""

from __future__ import annotations

import argparse
import asyncio
import os
import signal
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import httpx
from fastapi import FastAPI

from leadflow.embedded import EmbeddedBroker, free_port, port_is_open, resolve_tansu_bin
from shared.db import upgrade
from shared.events import TouchEventIn


def baseline_app() -> FastAPI:
    """The same validation with no broker: what FastAPI alone costs per request."""
    app = FastAPI()

    @app.post("/v1/events", status_code=202)
    async def post_event(event: TouchEventIn) -> dict[str, object]:
        return {"accepted": 1, "ids": [event.event_id or "x"], "duplicates": 0, "rejected": []}

    return app


class Server:
    """A server in its own process (so the load generator does not share its GIL)."""

    def __init__(self, argv: list[str], *, port: int, env: dict[str, str]) -> None:
        self.port, self.argv, self.env = port, argv, env
        self.process: subprocess.Popen[bytes] | None = None

    def __enter__(self) -> Server:
        self.process = subprocess.Popen(
            self.argv, env=self.env, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL
        )
        deadline = time.monotonic() + 60
        while not port_is_open("127.0.0.1", self.port):
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise RuntimeError(f"server {self.argv} did not start")
            time.sleep(0.05)
        return self

    def __exit__(self, *_exc: object) -> None:
        assert self.process is not None
        self.process.send_signal(signal.SIGINT)
        self.process.wait(20)


async def load(
    port: int, *, requests: int, concurrency: int, event_ids: bool = False
) -> tuple[float, list[float]]:
    """Send `requests` events with `concurrency` in flight; returns (rate/s, latencies)."""
    latencies: list[float] = []
    counter = iter(range(requests))

    async def worker(client: httpx.AsyncClient) -> None:
        for i in counter:
            body = {
                "type": "page_view",
                "lead": {"email": f"bench{i % 500}@acme.example"},
                "properties": {"url": "https://seller.example/pricing"},
            }
            if event_ids:  # client ids go through the idempotency check
                body["event_id"] = f"bench-{port}-{i}-{time.perf_counter_ns()}"
            started = time.perf_counter()
            response = await client.post("/v1/events", json=body)
            latencies.append(time.perf_counter() - started)
            if response.status_code != 202:
                raise RuntimeError(f"unexpected {response.status_code}: {response.text}")

    limits = httpx.Limits(max_connections=concurrency)
    async with httpx.AsyncClient(base_url=f"http://127.0.0.1:{port}", limits=limits) as client:
        await asyncio.gather(*(worker(client) for _ in range(min(concurrency, 20))))  # warm-up
        counter = iter(range(requests))
        latencies.clear()
        started = time.perf_counter()
        await asyncio.gather(*(worker(client) for _ in range(concurrency)))
        elapsed = time.perf_counter() - started
    return requests / elapsed, latencies


def p(values: list[float], q: float) -> float:
    """The q-quantile in milliseconds."""
    return statistics.quantiles(values, n=100)[int(q * 100) - 1] * 1000


def main() -> None:
    """Run baseline and ingest back to back and print a Markdown table row."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--requests", type=int, default=3000)
    parser.add_argument("--concurrency", type=int, default=32)
    parser.add_argument(
        "--event-ids", action="store_true", help="send client event ids (deduplicated)"
    )
    parser.add_argument(
        "--workers", type=int, default=1, help="ingest worker processes (leadflow ingest --workers)"
    )
    args = parser.parse_args()
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}

    with (
        tempfile.TemporaryDirectory() as tmp,
        EmbeddedBroker(binary=resolve_tansu_bin(None), log_path=Path(tmp) / "tansu.log") as broker,
    ):
        db_url = f"sqlite:///{tmp}/bench.db"
        upgrade(db_url)
        base_port, ingest_port = free_port(), free_port()
        baseline = [
            str(bin_dir / "uvicorn"),
            "bench.ingest:baseline_app",
            "--factory",
            "--port",
            str(base_port),
            "--log-level",
            "warning",
            "--no-access-log",
        ]
        with Server(baseline, port=base_port, env=env):
            base_rate, base_lat = asyncio.run(
                load(base_port, requests=args.requests, concurrency=args.concurrency)
            )
        ingest_env = {
            **env,
            "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS": broker.bootstrap_servers,
            "LEADFLOW_DATABASE_URL": db_url,
            "LEADFLOW_LOG_LEVEL": "WARNING",
            # The baseline checks no key either; and one bench client would trip the key limit.
            "LEADFLOW_AUTH": "off",
        }
        ingest = [str(bin_dir / "leadflow"), "ingest", "--port", str(ingest_port)]
        if args.workers > 1:
            ingest += ["--workers", str(args.workers)]
        with Server(ingest, port=ingest_port, env=ingest_env):
            rate, lat = asyncio.run(
                load(
                    ingest_port,
                    requests=args.requests,
                    concurrency=args.concurrency,
                    event_ids=args.event_ids,
                )
            )

    print(
        f"requests={args.requests} concurrency={args.concurrency} event_ids={args.event_ids} "
        f"workers={args.workers}"
    )
    print("| server | events/s | p50 ms | p99 ms |")
    print("| --- | --- | --- | --- |")
    print(
        f"| bare FastAPI (baseline) | {base_rate:.0f} | {p(base_lat, 0.5):.1f} | "
        f"{p(base_lat, 0.99):.1f} |"
    )
    print(f"| ingest → Tansu, acks=all | {rate:.0f} | {p(lat, 0.5):.1f} | {p(lat, 0.99):.1f} |")
    print(f"ratio ingest/baseline = {rate / base_rate:.2f}")


if __name__ == "__main__":
    main()
