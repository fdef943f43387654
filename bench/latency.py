"""Event -> owner latency at a fixed offered rate: ingest, scoring and routing, one process each.

    LEADFLOW_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python -m bench.latency            # the issue's figure: 300 events/s for 60 s

The generator (`bench.load.send_on_schedule`: asyncio on keep-alive connections, in two
processes taking turns) posts single events with client ids, each a new lead, on a fixed
schedule: every send starts on time whatever the answers to earlier ones, and the output shows
the rate it achieved and how many sends were late. An event's latency runs from the moment its
send was due to the `assigned_at` of the first assignment routing made for its lead change
(`assignments.cause_event_id`), so a late send cannot hide latency. Leads still unassigned
`--wait` seconds after the last send are counted as such; the run ends then, caught up or not.
"""

from __future__ import annotations

import argparse
import math
import os
import tempfile
import time
from pathlib import Path

import orjson
from sqlalchemy import select

from bench.load import (
    Sent,
    add_broker_option,
    http_request,
    pipeline,
    schedule_line,
    send_on_schedule,
    wait_for_groups,
)
from services.routing.repository import assignments
from services.scoring.shapes import lead_change_id
from shared.config import Settings
from shared.db import as_utc, make_engine


def single_events(*, count: int, tag: str) -> list[tuple[str, bytes]]:
    """`count` POST /v1/events requests, each a new lead with a client event id, 40 leads to
    a company (as `bench.stream`'s accounts): one company of 18,000 people would make every
    account roll-up re-assess a committee no real account has."""
    out = []
    for i in range(count):
        event_id = f"lat-{tag}-{i}"
        body = {
            "type": "demo_requested",
            "event_id": event_id,
            "lead": {"email": f"{event_id}@co{i // 40}-{tag}.example", "job_title": "Head of IT"},
        }
        out.append((event_id, http_request("/v1/events", orjson.dumps(body))))
    return out


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


def report(
    sent: list[Sent], done: dict[str, float], *, rate: float, seconds: float, wait: float
) -> list[str]:
    """The lines of the result: generator, ingest, event -> owner, target."""
    accepted = {s.key: s for s in sent if s.status == 202}
    answers = sorted(s.answered - s.written for s in accepted.values())  # type: ignore[operator]
    lines = [
        schedule_line(sent, rate=rate, unit="events"),
        f"ingest: {len(accepted):,} of {len(sent):,} accepted (202; "
        f"{sum(1 for s in sent if s.status == 0)} without an answer in 10 s, "
        f"{sum(1 for s in sent if s.status not in (0, 202))} other answers); answer p50 "
        f"{_q(answers, 50) * 1000:.0f} ms, p99 {_q(answers, 99) * 1000:.0f} ms",
    ]
    latencies = sorted(done[k] - accepted[k].due for k in done if k in accepted)
    line = f"event -> owner: assigned {len(latencies):,}/{len(sent):,} within {wait:g} s after"
    line += " the last send"
    if latencies:
        line += (
            f"; p50 {_q(latencies, 50):.2f} s, p90 {_q(latencies, 90):.2f} s, p99 "
            f"{_q(latencies, 99):.2f} s, max {latencies[-1]:.2f} s (of those assigned)"
        )
    lines.append(line)
    met = len(latencies) == len(sent) > 0 and _q(latencies, 99) < 1.0
    lines.append(
        f"target at {rate:g} events/s for {seconds:g} s (every lead assigned, p99 < 1 s): "
        + ("met" if met else "NOT met")
    )
    return lines


def _q(values: list[float], pct: float) -> float:
    """The pct-th percentile of sorted values, by nearest rank (0 for none)."""
    if not values:
        return 0.0
    return values[max(0, min(len(values), math.ceil(len(values) * pct / 100)) - 1)]


def main() -> None:
    """Start the three services, offer a fixed rate, and report assignment latency."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_option(parser)
    parser.add_argument("--rate", type=float, default=300.0, help="events a second offered")
    parser.add_argument("--seconds", type=float, default=60.0)
    parser.add_argument("--senders", type=int, default=2, help="sender processes")
    parser.add_argument(
        "--wait", type=float, default=120.0, help="at most this long after the last send"
    )
    args = parser.parse_args()
    if not os.environ.get("LEADFLOW_BENCH_DATABASE_URL"):
        # Three processes writing one SQLite file lock each other out: not a figure.
        raise SystemExit("bench.latency needs PostgreSQL: set LEADFLOW_BENCH_DATABASE_URL")
    settings = Settings()
    requests = single_events(count=int(args.rate * args.seconds), tag=os.urandom(3).hex())
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        pipeline(broker=args.broker, tmp=Path(tmp_name)) as running,
    ):
        bootstrap = running.broker.bootstrap_servers
        groups = [settings.group_scoring, settings.group_routing]
        if not wait_for_groups(bootstrap=bootstrap, groups=groups):
            print("bench.latency: the consumer groups did not form within 60 s; going on")
        sent = send_on_schedule(
            port=running.ports["ingest"], requests=requests, rate=args.rate, processes=args.senders
        )
        ids = {s.key for s in sent if s.status == 202}
        ended = time.monotonic()
        done: dict[str, float] = {}
        while True:
            done = _assigned(running.database_url, ids)
            if len(done) == len(ids) or time.monotonic() - ended >= args.wait:
                break
            time.sleep(1)
        version = getattr(running.broker, "version", None) or ""
        errors = running.log_tails(errors_only=True)  # a service failing, not just slow
        if len(done) < len(ids) and errors:
            print(errors)
    print(
        f"broker: {args.broker} {version}; database: PostgreSQL; {os.cpu_count()} cores; "
        f"{args.senders} sender processes"
    )
    for line in report(sent, done, rate=args.rate, seconds=args.seconds, wait=args.wait):
        print(line)


if __name__ == "__main__":
    main()
