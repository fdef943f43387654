"""One process's running parts: database, producer, the chosen services' consumers, and the app."""

from __future__ import annotations

import logging
import threading
import time
from collections.abc import Callable, Iterable

from fastapi import FastAPI
from kafka.errors import KafkaError

from leadflow.app import create_app
from operations.service import runtime_registry
from services.routing.consumer import build_consumer as build_routing_consumer
from services.routing.consumer import build_deliverer
from services.scoring.consumer import build_consumer as build_scoring_consumer
from services.scoring.consumer import build_rescorer
from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.db import check_migrations, make_engine, make_session_factory, upgrade
from shared.faults import Fault, Outage, classify
from shared.http import Resources
from shared.kafka import AsyncProducer, ensure_topics
from shared.ops.broker import StreamMonitor

log = logging.getLogger(__name__)

SERVICES = ("ingest", "scoring", "routing")
CONSUMERS = {"scoring": build_scoring_consumer, "routing": build_routing_consumer}


def wait_for_topics(*, settings: Settings, timeout_s: float = 30.0) -> None:
    """Create leadflow's topics, waiting for a broker that is still starting."""
    deadline = time.monotonic() + timeout_s
    while True:
        try:
            ensure_topics(settings=settings)
            return
        except KafkaError as exc:
            if time.monotonic() > deadline:
                raise RuntimeError(
                    f"Kafka at {settings.kafka_bootstrap_servers} is not reachable: {exc}"
                ) from exc
            time.sleep(0.5)


class Runtime:
    """Starts and stops what a leadflow process runs; `app` serves its HTTP routes."""

    def __init__(
        self,
        *,
        settings: Settings,
        services: Iterable[str],
        migrate: bool = False,
        broker_details: dict[str, object] | None = None,
    ):
        self.settings = settings
        self.broker_details = dict(broker_details or {})
        self.services = [s for s in SERVICES if s in set(services)]
        self.migrate = migrate
        self.resources: Resources | None = None
        self.app: FastAPI | None = None
        self._threads: list[threading.Thread] = []
        self._stopping = threading.Event()

    def start(self) -> FastAPI:
        """Check (or run) migrations, create topics, start consumers; returns the app.

        Raises `MigrationsOutOfDate` on an unmigrated database so the caller can say what to run.
        """
        settings = self.settings
        if self.migrate:
            upgrade(settings.database_url)
        engine = make_engine(settings.database_url, echo=settings.database_echo)
        try:
            check_migrations(engine)
        except Exception:
            engine.dispose()
            raise
        wait_for_topics(settings=settings)
        sessions = make_session_factory(engine)
        producer = AsyncProducer(settings=settings)
        consumers: list[ConsumerLoop] = [
            CONSUMERS[name](settings=settings, sessions=sessions, producer=producer)
            for name in self.services
            if name in CONSUMERS
        ]
        monitor = StreamMonitor(settings=settings)
        outages: list[Outage] = []
        self.resources = Resources(
            settings=settings,
            engine=engine,
            sessions=sessions,
            producer=producer,
            consumers=consumers,
            outages=outages,
            monitor=monitor,
            broker_details=self.broker_details,
            metrics=runtime_registry(
                settings=settings,
                monitor=monitor,
                sessions=sessions,
                services=self.services,
                consumers=consumers,
                outages=outages,
            ),
        )
        monitor.start()
        for loop in consumers:
            thread = threading.Thread(target=loop.run, name=f"consumer-{loop.name}", daemon=True)
            thread.start()
            self._threads.append(thread)
        self._stopping.clear()
        if "routing" in self.services:
            deliver = build_deliverer(
                settings=settings, sessions=sessions, producer=producer, outages=outages
            )
            thread = threading.Thread(
                target=self._every,
                args=(settings.actions_poll_interval_s, deliver, self._outage("action delivery")),
                name="routing-actions",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        if "scoring" in self.services and settings.scoring_rescore_interval_s > 0:
            sweep = build_rescorer(settings=settings, sessions=sessions, producer=producer)
            thread = threading.Thread(
                target=self._every,
                args=(settings.scoring_rescore_interval_s, sweep, self._outage("stage re-score")),
                name="scoring-rescore",
                daemon=True,
            )
            thread.start()
            self._threads.append(thread)
        self.app = create_app(resources=self.resources, services=self.services)
        return self.app

    def _outage(self, worker: str) -> Outage:
        """A new outage tracker for one of this process's workers, reported by /readyz and
        /metrics."""
        outage = Outage.from_settings(worker=worker, settings=self.settings)
        if self.resources is not None:
            self.resources.outages.append(outage)
        return outage

    def _every(self, interval_s: float, work: Callable[[], object], outage: Outage) -> None:
        """Run `work` every `interval_s` until stop. A dependency's outage is waited out with
        capped backoff and logged when it starts and ends; any other error is logged and
        tried again at the next interval."""
        wait = interval_s
        while not self._stopping.wait(wait):
            wait = interval_s
            try:
                work()
            except Exception as exc:
                verdict = classify(exc)
                if verdict.fault is Fault.OUTAGE and verdict.dependency is not None:
                    wait = max(interval_s, outage.failed(exc, verdict.dependency))
                else:
                    log.exception("%s failed; trying again in %.0f s", outage.worker, interval_s)
                continue
            outage.recovered()

    def wait_until_assigned(self, *, timeout_s: float = 30.0) -> bool:
        """Block until every consumer has partitions (tests and readiness use it)."""
        if self.resources is None:
            return False
        deadline = time.monotonic() + timeout_s
        return all(
            loop.assigned.wait(max(0.0, deadline - time.monotonic()))
            for loop in self.resources.consumers
        )

    def drain(self, *, timeout_s: float) -> bool:
        """Wait (at most `timeout_s`) until every consumer has committed past each record this
        process published to the topics it consumes; True if they all caught up.

        Called after HTTP has stopped taking events, so the target no longer moves except by
        the consumers' own output (scoring's outbox feeds routing). The published offsets come
        from the producer's acks, so this is exact on Tansu too, whose end offsets are not.
        """
        resources = self.resources
        if resources is None or resources.producer is None or not resources.consumers:
            return True
        producer = resources.producer
        deadline = time.monotonic() + timeout_s
        while True:
            published = producer.acked_offsets()
            if all(loop.caught_up_with(published) for loop in resources.consumers):
                return True
            if time.monotonic() >= deadline:
                return False
            time.sleep(0.05)

    def stopped_workers(self) -> list[str]:
        """Names of this runtime's worker threads (consumers, outbox, actions, re-score) that
        ended while it runs: any is a crash."""
        if self._stopping.is_set():
            return []
        return [thread.name for thread in self._threads if not thread.is_alive()]

    def backlog(self) -> int:
        """Records this process published that its consumers have not committed yet."""
        resources = self.resources
        if resources is None or resources.producer is None:
            return 0
        published = resources.producer.acked_offsets()
        return sum(loop.behind(published) for loop in resources.consumers)

    def stop(self, *, timeout_s: float = 10.0) -> None:
        """Stop consumers (finishing their batch, leaving their groups), then the stream
        monitor, then flush and close the producer, then the database."""
        resources, self.resources = self.resources, None
        if resources is None:
            return
        self._stopping.set()
        for loop in resources.consumers:
            loop.stop()
        deadline = time.monotonic() + timeout_s
        for thread in self._threads:
            thread.join(max(0.1, deadline - time.monotonic()))
            if thread.is_alive():
                log.warning("%s did not stop within %.0fs", thread.name, timeout_s)
        self._threads.clear()
        if resources.monitor is not None:
            resources.monitor.stop()
        for state in resources.service_state.values():
            flush = getattr(state, "flush", None)
            if flush is not None:
                flush()
        if resources.producer is not None:
            try:
                resources.producer.close()
            except Exception:
                log.exception("producer did not close cleanly")
        resources.engine.dispose()
