"""Ingest throughput measured with wrk, each figure a ratio against a baseline from the same run.

    make bench     # on Apache Kafka when Java and Maven are here, else on Tansu
    .venv/bin/python -m bench.ingest --broker tansu --seconds 10
    LEADFLOW_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench make bench

Figures (issue 13's table):
- `POST /v1/events` without ids, and with client `event_id`s, against a bare FastAPI handler
  that validates the same body and answers 202 without publishing;
- `POST /v1/events/batch` with 100 events a request (events/s) against the raw kafka-python
  producer (idempotent, acks=all) sending the same records from one process.

First the load generator is shown not to be the limit: wrk drives the bare handler at a rate
several times what ingest reaches, so an ingest figure below it is the server's.
"""

from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

import orjson
from fastapi import FastAPI
from kafka import KafkaProducer

from bench.load import (
    Server,
    WrkResult,
    add_broker_option,
    bench_database,
    run_wrk,
    service_env,
    start_broker,
    wrk_binary,
)
from leadflow.embedded import free_port
from shared.events import TouchEventIn


def baseline_app() -> FastAPI:
    """The same validation with no broker and no database: what FastAPI alone costs."""
    app = FastAPI()

    @app.post("/v1/events", status_code=202)
    async def post_event(event: TouchEventIn) -> dict[str, object]:
        return {"accepted": 1, "ids": [event.event_id or "x"], "duplicates": 0, "rejected": []}

    return app


def raw_producer_rate(*, bootstrap: str, topic: str, events: int) -> float:
    """Events/s of the bare kafka-python producer (idempotent, acks=all), all acknowledged."""
    producer = KafkaProducer(
        bootstrap_servers=bootstrap, acks="all", enable_idempotence=True, linger_ms=5
    )
    value = orjson.dumps(
        {
            "event_id": "x" * 36,
            "type": "page_view",
            "lead": {"email": "w1-1@acme.example"},
            "properties": {"url": "https://seller.example/pricing"},
            "occurred_at": "2026-12-02T00:00:00Z",
            "received_at": "2026-12-02T00:00:00Z",
            "source": "native",
        }
    )
    try:
        for _ in range(500):  # warm-up: connections, metadata, producer id
            producer.send(topic, value=value)
        producer.flush()
        started = time.perf_counter()
        futures = [producer.send(topic, key=str(i).encode(), value=value) for i in range(events)]
        for future in futures:
            future.get(timeout=60)
        return events / (time.perf_counter() - started)
    finally:
        producer.close()


def _row(name: str, result: WrkResult, unit: float = 1.0) -> str:
    return (
        f"| {name} | {result.requests_per_s * unit:,.0f} | {result.p50_ms:.1f} | "
        f"{result.p99_ms:.1f} | {result.errors} |"
    )


def main() -> None:
    """Measure the baselines and ingest in one run; print a Markdown table with the ratios."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_option(parser)
    parser.add_argument("--seconds", type=float, default=10.0, help="length of each wrk run")
    parser.add_argument("--connections", type=int, default=64)
    parser.add_argument("--batch", type=int, default=100, help="events per batch request")
    parser.add_argument("--batch-connections", type=int, default=8)
    args = parser.parse_args()
    wrk_binary()
    bin_dir = Path(sys.executable).parent
    env = {k: v for k, v in os.environ.items() if not k.startswith("LEADFLOW_")}
    run = {"seconds": args.seconds, "connections": args.connections}

    with tempfile.TemporaryDirectory() as tmp_name:
        tmp = Path(tmp_name)
        base_port = free_port()
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
        with Server(baseline, port=base_port, env=env, log=tmp / "baseline.log"):
            run_wrk(port=base_port, seconds=2, connections=args.connections)  # warm-up
            base = run_wrk(port=base_port, **run)
            base_one_thread = run_wrk(port=base_port, threads=1, **run)

        broker = start_broker(args.broker, tmp)
        broker.start()
        try:
            db_url = bench_database(tmp)
            ingest_port = free_port()
            ingest_env = service_env(
                bootstrap=broker.bootstrap_servers,
                database_url=db_url,
                LEADFLOW_BATCH_MAX_EVENTS=str(max(1000, args.batch)),
            )
            ingest = [str(bin_dir / "leadflow"), "ingest", "--port", str(ingest_port)]
            with Server(ingest, port=ingest_port, env=ingest_env, log=tmp / "ingest.log"):
                run_wrk(port=ingest_port, seconds=2, connections=args.connections)  # warm-up
                no_ids = run_wrk(port=ingest_port, **run)
                with_ids = run_wrk(port=ingest_port, with_ids=True, **run)
                # Fewer requests in flight: each carries `batch` events.
                batch = run_wrk(
                    port=ingest_port,
                    batch=args.batch,
                    seconds=args.seconds,
                    connections=args.batch_connections,
                )
            producer = raw_producer_rate(
                bootstrap=broker.bootstrap_servers,
                topic="leadflow.touch-events",
                events=max(20_000, int(batch.requests_per_s * args.batch * 2)),
            )
        finally:
            broker.stop()

    version = getattr(broker, "version", None) or ""
    print(
        f"broker: {args.broker} {version}; database: "
        f"{'PostgreSQL' if 'postgresql' in db_url else 'SQLite'}; wrk {args.seconds:g} s, "
        f"{args.connections} connections, 2 threads; {os.cpu_count()} cores"
    )
    print()
    print("| server | requests/s (events/s for batch) | p50 ms | p99 ms | errors |")
    print("| --- | --- | --- | --- | --- |")
    print(_row("bare FastAPI, same validation (baseline)", base))
    print(_row("bare FastAPI, wrk with 1 thread (generator check)", base_one_thread))
    print(_row("`POST /v1/events`, no event ids", no_ids))
    print(_row("`POST /v1/events`, client event ids", with_ids))
    print(_row(f"`POST /v1/events/batch`, {args.batch} a request", batch, unit=args.batch))
    print(f"| raw kafka-python producer, acks=all (baseline) | {producer:,.0f} | | | |")
    print()
    batch_rate = batch.requests_per_s * args.batch
    print("| figure | ratio | target |")
    print("| --- | --- | --- |")
    print(
        f"| single, no ids / bare FastAPI | {no_ids.requests_per_s / base.requests_per_s:.2f} "
        "| ≥ 0.40 |"
    )
    print(
        f"| single, client ids / bare FastAPI | "
        f"{with_ids.requests_per_s / base.requests_per_s:.2f} | ≥ 0.35 |"
    )
    print(f"| batch of {args.batch} / raw producer | {batch_rate / producer:.2f} | ≥ 0.80 |")
    if any(r.errors for r in (base, no_ids, with_ids, batch)):
        print("\nSome requests failed (errors column): those rates are not measurements.")


if __name__ == "__main__":
    main()
