"""Catching up after a burst: how long scoring and routing take to reach lag 0 once it ends.

    LEADFLOW_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python -m bench.burst      # the issue's figure: 1,000 events/s for 20 s

ingest, scoring and routing run as one process each (as in bench.latency), on Apache Kafka and
PostgreSQL. The generator (`bench.load.send_on_schedule`, one process) posts `POST
/v1/events/batch` requests of `--batch` events on a fixed schedule, `--rate` events a second
for `--seconds`: every event and event id unique, spread over `--leads` leads (20,000 events
over 2,000 leads by default: 10 touches each, as bench.stream's first row). From the first send
on, every `--interval` s, the bench reads each consumer group's lag: end offsets minus committed
offsets, scoring on the touch topic and routing on the lead-change topic, plus the lead changes
still in the outbox (scoring has made them but not yet published them, so routing's lag cannot
see them). The burst ends when its last batch is answered; the figure is the time from then
until both lags are 0 with the outbox empty, held for `--hold` s, or "not within --wait s".
"""

from __future__ import annotations

import argparse
import os
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path

import orjson
from kafka import KafkaAdminClient, KafkaConsumer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition
from sqlalchemy import func, select
from sqlalchemy.engine import Engine

from bench.load import (
    Sent,
    add_broker_option,
    http_request,
    pipeline,
    schedule_line,
    send_on_schedule,
    wait_for_groups,
)
from shared.config import Settings
from shared.db import make_engine, outbox

_KINDS = ["page_view", "pricing_viewed", "content_download", "webinar_attended", "page_view"]


def batches(*, events: int, batch: int, leads: int, tag: str) -> list[tuple[str, bytes]]:
    """POST /v1/events/batch requests of `batch` unique events, touching `leads` leads in turn."""
    out = []
    for first in range(0, events, batch):
        body = [
            {
                "type": _KINDS[(n // leads) % len(_KINDS)],
                "event_id": f"burst-{tag}-{n}",
                "lead": {
                    "email": f"lead{n % leads}-{tag}@co{n % leads % 50}.example",
                    "job_title": "Head of Operations",
                    "company": {"domain": f"co{n % leads % 50}.example", "employees": 250},
                },
                "properties": {"url": "https://seller.example/pricing"},
            }
            for n in range(first, min(first + batch, events))
        ]
        out.append((f"batch-{first}", http_request("/v1/events/batch", orjson.dumps(body))))
    return out


class LagReader:
    """Each consumer group's lag on its topic: end offsets minus committed offsets (a partition
    with no commit counts from its beginning, as the services reset to earliest)."""

    def __init__(self, *, bootstrap: str, watch: dict[str, str]) -> None:
        self.watch = watch  # group -> topic
        self._consumer = KafkaConsumer(bootstrap_servers=bootstrap, group_id=None)
        self._admin = KafkaAdminClient(bootstrap_servers=bootstrap)

    def read(self) -> dict[str, int]:
        """group -> records on its topic it has not committed yet."""
        parts = [
            TopicPartition(topic, p)
            for topic in set(self.watch.values())
            for p in sorted(self._consumer.partitions_for_topic(topic) or ())
        ]
        end = self._consumer.end_offsets(parts)
        beginning = self._consumer.beginning_offsets(parts)
        offsets = self._admin.list_group_offsets(list(self.watch))
        lags = {}
        for group, topic in self.watch.items():
            committed = {
                tp: meta.offset
                for tp, meta in offsets.get(group, {}).items()
                if tp.topic == topic and meta.offset >= 0
            }
            lags[group] = sum(
                max(0, end[tp] - committed.get(tp, beginning[tp]))
                for tp in parts
                if tp.topic == topic
            )
        return lags

    def close(self) -> None:
        """Close both clients."""
        self._consumer.close()
        self._admin.close()


@dataclass(frozen=True)
class Sample:
    """The lags at one moment (epoch seconds)."""

    at: float
    scoring: int  # touch events scoring has not committed
    routing: int  # lead changes routing has not committed
    outbox: int  # lead changes made but not yet published

    @property
    def zero(self) -> bool:
        """Nothing left anywhere."""
        return self.scoring == self.routing == self.outbox == 0


class Sampler(threading.Thread):
    """Reads the lags every `interval` s until stopped."""

    def __init__(self, *, bootstrap: str, database_url: str, interval: float) -> None:
        super().__init__(daemon=True)
        self.settings = Settings()
        self.bootstrap, self.database_url = bootstrap, database_url
        self.interval, self.stop = interval, threading.Event()
        self.samples: list[Sample] = []
        self.reader: LagReader | None = None  # made on this thread, after the senders forked
        self.engine: Engine | None = None

    def read(self) -> Sample:
        """One sample of both lags and the outbox."""
        if self.reader is None:
            self.reader = LagReader(
                bootstrap=self.bootstrap,
                watch={
                    self.settings.group_scoring: self.settings.topic_touch_events,
                    self.settings.group_routing: self.settings.topic_lead_changes,
                },
            )
        if self.engine is None:
            self.engine = make_engine(self.database_url)
        at = time.time()
        lags = self.reader.read()
        with self.engine.connect() as conn:
            pending = conn.execute(
                select(func.count())
                .select_from(outbox)
                .where(outbox.c.topic == self.settings.topic_lead_changes)
            ).scalar_one()
        return Sample(
            at, lags[self.settings.group_scoring], lags[self.settings.group_routing], pending
        )

    def run(self) -> None:
        """Sample until stopped; a failed read (a coordinator moving, say) is skipped."""
        while not self.stop.is_set():
            began = time.monotonic()
            try:
                self.samples.append(self.read())
            except (KafkaError, OSError) as exc:
                print(f"bench.burst: a lag read failed ({exc!r}); skipped")
            self.stop.wait(max(0.0, self.interval - (time.monotonic() - began)))

    def close(self) -> None:
        """Stop sampling and close the clients."""
        self.stop.set()
        if self.is_alive():
            self.join(30)
        if self.reader is not None:
            self.reader.close()
        if self.engine is not None:
            self.engine.dispose()


def caught_up(samples: list[Sample], *, since: float, hold: float) -> Sample | None:
    """The first sample after `since` from which everything stayed 0 for `hold` s, or None."""
    run_start: Sample | None = None
    for sample in samples:
        if sample.at < since:
            continue
        if not sample.zero:
            run_start = None
        elif run_start is None:
            run_start = sample
        if run_start is not None and sample.at - run_start.at >= hold:
            return run_start
    return None


def report(
    sent: list[Sent], samples: list[Sample], *, args: argparse.Namespace, end: float
) -> list[str]:
    """The lines of the result: generator, burst, peak lags, catch-up time, target."""
    accepted = sum(s.accepted for s in sent)
    events = args.rate * args.seconds
    span = end - sent[0].due + args.batch / args.rate  # each batch owns one slot of the schedule
    lines = [
        schedule_line(sent, rate=args.rate / args.batch, unit="batches"),
        f"burst: {accepted:,.0f} of {events:,.0f} events accepted, {accepted / span:,.0f} "
        f"events/s ({span:.1f} s from the first send due to the last answer, plus one slot; "
        f"{sum(1 for s in sent if s.status != 202)} batches not accepted)",
    ]
    during = [s for s in samples if s.at >= sent[0].due]
    if during:
        lines.append(
            f"peak lag: scoring {max(s.scoring for s in during):,} touch events, routing "
            f"{max(s.routing for s in during):,} lead changes, outbox "
            f"{max(s.outbox for s in during):,} lead changes ({len(during)} samples, every "
            f"{args.interval:g} s)"
        )
    at_end = min((s for s in during if s.at >= end), key=lambda s: s.at, default=None)
    if at_end is not None:
        lines.append(
            f"at the burst's end: scoring lag {at_end.scoring:,}, routing lag "
            f"{at_end.routing:,}, outbox {at_end.outbox:,}"
        )
    zero = caught_up(samples, since=end, hold=args.hold)
    if zero is not None:
        lines.append(
            f"lag back to 0 (both groups, outbox empty, for {args.hold:g} s): "
            f"{zero.at - end:.1f} s after the burst's end"
        )
    elif during:
        last = during[-1]
        lines.append(
            f"lag back to 0: not within {args.wait:g} s of the burst's end (then: scoring lag "
            f"{last.scoring:,}, routing lag {last.routing:,}, outbox {last.outbox:,})"
        )
        if at_end is not None and last.at > at_end.at:
            drained = (at_end.scoring - last.scoring) / (last.at - at_end.at)
            lines.append(f"scoring worked off {drained:,.0f} touch events/s after the burst")
    met = zero is not None and zero.at - end <= 15.0
    lines.append(
        f"target at {args.rate:g} events/s in batches of {args.batch} for {args.seconds:g} s "
        f"(lag back to 0 within 15 s of the burst's end): " + ("met" if met else "NOT met")
    )
    if during:
        marks: list[Sample] = []
        for sample in during:
            if not marks or sample.at - marks[-1].at >= args.timeline:
                marks.append(sample)
        if marks[-1] is not during[-1]:
            marks.append(during[-1])
        lines.append(
            "lag (scoring/routing/outbox) by seconds from the first send: "
            + ", ".join(
                f"{s.at - sent[0].due:.0f}: {s.scoring}/{s.routing}/{s.outbox}" for s in marks
            )
        )
    return lines


def main() -> None:
    """Start the three services, send the burst, and time the catch-up."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_option(parser)
    parser.add_argument("--rate", type=float, default=1000.0, help="events a second offered")
    parser.add_argument("--batch", type=int, default=100, help="events per request")
    parser.add_argument("--seconds", type=float, default=20.0, help="length of the burst")
    parser.add_argument("--leads", type=int, default=2000, help="distinct leads touched")
    parser.add_argument(
        "--wait", type=float, default=60.0, help="at most this long after the burst's end"
    )
    parser.add_argument("--interval", type=float, default=0.2, help="seconds between samples")
    parser.add_argument("--hold", type=float, default=1.0, help="seconds lag must stay 0")
    parser.add_argument("--timeline", type=float, default=5.0, help="seconds between printed lags")
    args = parser.parse_args()
    if not os.environ.get("LEADFLOW_BENCH_DATABASE_URL"):
        raise SystemExit("bench.burst needs PostgreSQL: set LEADFLOW_BENCH_DATABASE_URL")
    if args.broker != "kafka":
        raise SystemExit("bench.burst needs Apache Kafka, whose end offsets are exact")
    requests = batches(
        events=int(args.rate * args.seconds),
        batch=args.batch,
        leads=args.leads,
        tag=os.urandom(3).hex(),
    )
    settings = Settings()
    with (
        tempfile.TemporaryDirectory() as tmp_name,
        pipeline(
            broker=args.broker, tmp=Path(tmp_name), LEADFLOW_SCORING_RESCORE_INTERVAL_S="0"
        ) as running,
    ):
        bootstrap = running.broker.bootstrap_servers
        if not wait_for_groups(
            bootstrap=bootstrap, groups=[settings.group_scoring, settings.group_routing]
        ):
            print("bench.burst: the consumer groups did not form within 60 s; going on")
        sampler = Sampler(
            bootstrap=bootstrap, database_url=running.database_url, interval=args.interval
        )
        try:
            sent = send_on_schedule(
                port=running.ports["ingest"],
                requests=requests,
                rate=args.rate / args.batch,
                processes=1,
                started=lambda _start: sampler.start(),
            )
            end = max((s.answered for s in sent if s.answered), default=sent[-1].due)
            while time.time() < end + args.wait:
                if caught_up(list(sampler.samples), since=end, hold=args.hold):
                    break
                time.sleep(args.interval)
        finally:
            sampler.close()
        version = getattr(running.broker, "version", None) or ""
        errors = running.log_tails(errors_only=True)  # a service failing, not just slow
        if errors and not caught_up(sampler.samples, since=end, hold=args.hold):
            print(errors)
    print(f"broker: kafka {version}; database: PostgreSQL; {os.cpu_count()} cores")
    for line in report(sent, sampler.samples, args=args, end=end):
        print(line)


if __name__ == "__main__":
    main()
