"""Scoring and routing throughput against the raw kafka-python consumer on the same topic.

    LEADFLOW_BENCH_DATABASE_URL=postgresql+psycopg://postgres@127.0.0.1:5432/bench \\
        .venv/bin/python -m bench.stream            # --shapes 2000x10,20x300 (the default)

Each shape (leads x touches per lead) runs on a broker and database of its own; the first is the
short-history reference the others' scoring rate is compared with (long histories must not
slow scoring down).

The touches are put on the topic first (raw producer), so the measured figure is how fast a
service works through a backlog:
- baseline: a raw kafka-python consumer in its own process reading the same topic from the
  start and parsing every value as JSON;
- scoring: `leadflow scoring` in its own process, timed from its first committed offset to
  its last (the group's committed offsets, read by an admin client every 0.2 s), or from its
  start when one batch held everything;
- routing: `leadflow routing` on the lead changes scoring published, against the raw consumer
  on that topic.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

from kafka import KafkaAdminClient, KafkaConsumer, KafkaProducer
from kafka.errors import KafkaError
from kafka.structs import TopicPartition

from bench.load import Server, add_broker_option, bench_database, service_env, start_broker
from leadflow.embedded import free_port
from shared.config import Settings
from shared.events import TouchEnvelope, TouchEventIn
from shared.kafka import ensure_topics

_RAW_CONSUMER = """
import sys, time, orjson
from kafka import KafkaConsumer
bootstrap, topic, total = sys.argv[1], sys.argv[2], int(sys.argv[3])
consumer = KafkaConsumer(topic, bootstrap_servers=bootstrap, group_id=None,
                         auto_offset_reset="earliest", enable_auto_commit=False)
seen, started = 0, None
while seen < total:
    for records in consumer.poll(timeout_ms=1000).values():
        if started is None:
            started = time.perf_counter()
        for record in records:
            orjson.loads(record.value)
            seen += 1
print(seen / (time.perf_counter() - started))
"""


def touches(*, leads: int, per_lead: int) -> list[TouchEnvelope]:
    """`per_lead` touches of each of `leads` leads, interleaved as traffic is, in time order."""
    start = datetime.now(UTC) - timedelta(days=2)
    kinds = ["page_view", "pricing_viewed", "content_download", "webinar_attended", "page_view"]
    out = []
    for step in range(per_lead):
        for lead in range(leads):
            at = start + timedelta(seconds=step * leads + lead)
            event = TouchEventIn.model_validate(
                {
                    "type": kinds[step % len(kinds)],
                    "event_id": f"bench-{lead}-{step}",
                    "occurred_at": at.isoformat(),
                    "lead": {
                        "email": f"lead{lead}@co{lead % 50}.example",
                        "job_title": "Head of Operations",
                        "company": {"domain": f"co{lead % 50}.example", "employees": 250},
                    },
                    "properties": {"url": "https://seller.example/pricing"},
                }
            )
            out.append(TouchEnvelope.from_native(event, received_at=at))
    return out


def _end(settings: Settings, topic: str) -> int:
    consumer = KafkaConsumer(bootstrap_servers=settings.bootstrap_servers, group_id=None)
    try:
        parts = [TopicPartition(topic, p) for p in consumer.partitions_for_topic(topic) or ()]
        return sum(consumer.end_offsets(parts).values())
    finally:
        consumer.close()


def broker_of(settings: Settings) -> str:
    """The bootstrap servers as one string."""
    return settings.kafka_bootstrap_servers or ""


def _committed(admin: KafkaAdminClient, group: str, topic: str) -> int:
    try:
        offsets = admin.list_group_offsets(group).get(group, {})
    except KafkaError:  # e.g. the coordinator still loading the group: ask again later
        return 0
    return sum(m.offset for tp, m in offsets.items() if tp.topic == topic and m.offset > 0)


def time_service(
    *, service: str, settings: Settings, env: dict[str, str], group: str, topic: str, log: Path
) -> tuple[float, int]:
    """Events/s of `leadflow <service>` working through `topic`, and how many it did."""
    total = _end(settings, topic)
    port = free_port()
    argv = [str(Path(sys.executable).parent / "leadflow"), service, "--port", str(port)]
    admin = KafkaAdminClient(bootstrap_servers=settings.bootstrap_servers)
    try:
        with Server(argv, port=port, env=env, log=log):
            started_at = time.perf_counter()
            first_at, first, done = None, 0, 0
            deadline = time.monotonic() + 3600
            while time.monotonic() < deadline:
                done = max(done, _committed(admin, group, topic))
                if first_at is None and done > 0:
                    first_at, first = time.perf_counter(), done
                if done >= total:
                    break
                time.sleep(0.2)
            ended = time.perf_counter()
            if first_at is None or first >= total:
                # One batch held everything: time it from the service's start instead.
                return total / max(ended - started_at, 1e-9), total
            return (total - first) / max(ended - first_at, 1e-9), total
    finally:
        admin.close()


def raw_consumer_rate(*, settings: Settings, topic: str) -> float:
    """Events/s of a bare kafka-python consumer parsing JSON, in its own process."""
    total = _end(settings, topic)
    out = subprocess.run(
        [sys.executable, "-c", _RAW_CONSUMER, broker_of(settings), topic, str(total)],
        capture_output=True,
        text=True,
        check=True,
        timeout=600,
    )
    return float(out.stdout.strip())


def run_shape(*, broker_kind: str, tmp: Path, leads: int, per_lead: int) -> dict[str, float]:
    """One shape on a broker and database of its own: fill the touch topic, then time the raw
    consumer, scoring, the raw consumer on the lead changes, and routing."""
    broker = start_broker(broker_kind, tmp)
    broker.start()
    try:
        db_url = bench_database(tmp)
        settings = Settings(kafka_bootstrap_servers=broker.bootstrap_servers)
        ensure_topics(settings=settings)
        producer = KafkaProducer(
            bootstrap_servers=broker.bootstrap_servers, acks="all", linger_ms=5
        )
        for env_ in touches(leads=leads, per_lead=per_lead):
            producer.send(
                settings.topic_touch_events,
                key=env_.lead_key.encode(),
                value=env_.to_bytes(),
                headers=[("event_id", env_.event_id.encode())],
            )
        producer.flush()
        producer.close()
        env = service_env(
            bootstrap=broker.bootstrap_servers,
            database_url=db_url,
            LEADFLOW_SCORING_RESCORE_INTERVAL_S="0",
        )
        raw_touch = raw_consumer_rate(settings=settings, topic=settings.topic_touch_events)
        scoring, scored = time_service(
            service="scoring",
            settings=settings,
            env=env,
            group=settings.group_scoring,
            topic=settings.topic_touch_events,
            log=tmp / "scoring.log",
        )
        raw_changes = raw_consumer_rate(settings=settings, topic=settings.topic_lead_changes)
        routing, routed = time_service(
            service="routing",
            settings=settings,
            env=env,
            group=settings.group_routing,
            topic=settings.topic_lead_changes,
            log=tmp / "routing.log",
        )
    finally:
        broker.stop()
    return {
        "raw_touch": raw_touch,
        "scoring": scoring,
        "scored": scored,
        "raw_changes": raw_changes,
        "routing": routing,
        "routed": routed,
        "postgres": "postgresql" in db_url,
        "version": getattr(broker, "version", None) or "",
    }


def _shape(text: str) -> tuple[int, int]:
    leads, per_lead = text.lower().split("x")
    return int(leads), int(per_lead)


def main() -> None:
    """Time scoring and routing on each shape (leads x touches per lead) and print the table."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    add_broker_option(parser)
    parser.add_argument(
        "--shapes",
        default="2000x10,20x300",
        help="comma-separated LEADSxTOUCHES; the first is the short-history reference",
    )
    args = parser.parse_args()
    if args.broker != "kafka":
        # Progress is read as committed offsets against end offsets, which Tansu under-reports.
        raise SystemExit(
            "bench.stream needs Apache Kafka (Java 17+ and Maven), whose end "
            "offsets are exact; Tansu's are lower bounds"
        )
    shapes = [_shape(s) for s in args.shapes.split(",")]
    results = []
    for leads, per_lead in shapes:
        with tempfile.TemporaryDirectory() as tmp_name:
            results.append(
                run_shape(
                    broker_kind=args.broker, tmp=Path(tmp_name), leads=leads, per_lead=per_lead
                )
            )
    first = results[0]
    database = "PostgreSQL" if first["postgres"] else "SQLite"
    print(
        f"broker: {args.broker} {first['version']}; database: {database}; "
        f"{os.cpu_count()} cores; each shape on a fresh broker and database"
    )
    print()
    print("| figure | events/s | baseline: raw consumer, same topic | ratio | target |")
    print("| --- | --- | --- | --- | --- |")
    for (leads, per_lead), r in zip(shapes, results, strict=True):
        print(
            f"| scoring, {leads} leads x {per_lead} touches ({r['scored']:.0f} events) | "
            f"{r['scoring']:,.0f} | {r['raw_touch']:,.0f} | "
            f"{r['scoring'] / r['raw_touch']:.3f} | ≥ 0.40 |"
        )
        print(
            f"| routing, {r['routed']:.0f} lead changes ({leads} x {per_lead}) | "
            f"{r['routing']:,.0f} | {r['raw_changes']:,.0f} | "
            f"{r['routing'] / r['raw_changes']:.3f} | ≥ 0.40 |"
        )
    for (_leads, per_lead), r in zip(shapes[1:], results[1:], strict=True):
        print(
            f"| scoring at {per_lead} touches a lead / at {shapes[0][1]} | "
            f"{r['scoring']:,.0f} / {first['scoring']:,.0f} | | "
            f"{r['scoring'] / first['scoring']:.2f} | ≥ 0.80 |"
        )


if __name__ == "__main__":
    main()
