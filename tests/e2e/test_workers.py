"""`leadflow ingest --workers 2`: one port, two processes, and /metrics that adds them up."""

from __future__ import annotations

import signal
import subprocess
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from leadflow.embedded import free_port
from shared.config import Settings
from tests.e2e.test_leadflow_up import LEADFLOW, clean_env, wait_ready

pytestmark = pytest.mark.e2e


def accepted_total(port: int) -> float:
    """leadflow_ingest_requests_total{source="native",status="202"} from one /metrics answer."""
    text = httpx.get(f"http://127.0.0.1:{port}/metrics", timeout=5).text
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            if sample.name == "leadflow_ingest_requests_total" and sample.labels == {
                "source": "native",
                "status": "202",
            }:
                return sample.value
    return 0.0


def counting_pids(folder: Path) -> set[str]:
    """The worker processes that have written counters to the multiprocess folder."""
    return {p.stem.rsplit("_", 1)[-1] for p in folder.glob("counter_*.db")}


def test_every_worker_counts_into_one_metrics_answer(settings: Settings, tmp_path: Path):
    port = free_port()
    metrics_dir = tmp_path / "metrics"
    metrics_dir.mkdir()
    process = subprocess.Popen(
        [LEADFLOW, "ingest", "--workers", "2", "--port", str(port)],
        stdout=subprocess.PIPE,
        stderr=subprocess.STDOUT,
        text=True,
        env=clean_env(
            LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers or "",
            LEADFLOW_DATABASE_URL=settings.database_url,
            LEADFLOW_TOPIC_TOUCH_EVENTS=settings.topic_touch_events,
            LEADFLOW_AUTH="off",
            LEADFLOW_LOG_LEVEL="WARNING",
            PROMETHEUS_MULTIPROC_DIR=str(metrics_dir),
        ),
    )
    try:
        wait_ready(port, process)
        posted = 0
        # New connections each time, so the kernel spreads them over both workers; keep going
        # until both have counted something (bounded), or the sums below would prove nothing.
        while len(counting_pids(metrics_dir)) < 2 and posted < 400:
            for _ in range(10):
                answer = httpx.post(
                    f"http://127.0.0.1:{port}/v1/events",
                    json={"type": "page_view", "lead": {"email": f"w{posted}@acme.example"}},
                    timeout=10,
                )
                assert answer.status_code == 202, answer.text
                posted += 1
        assert len(counting_pids(metrics_dir)) == 2, "one worker served every request"
        # Whichever worker answers the scrape, it reports both workers' requests.
        assert [accepted_total(port) for _ in range(6)] == [float(posted)] * 6
    finally:
        process.send_signal(signal.SIGINT)
        try:
            process.wait(timeout=30)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait()
    assert process.returncode == 0, process.stdout.read() if process.stdout else ""


def test_a_leftover_metrics_folder_is_refused(settings: Settings, tmp_path: Path):
    (tmp_path / "counter_123.db").write_bytes(b"old run")
    done = subprocess.run(
        [LEADFLOW, "ingest", "--workers", "2", "--port", str(free_port())],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(
            LEADFLOW_KAFKA_BOOTSTRAP_SERVERS=settings.kafka_bootstrap_servers or "",
            LEADFLOW_DATABASE_URL=settings.database_url,
            PROMETHEUS_MULTIPROC_DIR=str(tmp_path),
        ),
    )
    assert done.returncode == 1
    assert "is not empty" in done.stderr


def test_up_refuses_workers():
    done = subprocess.run(
        [LEADFLOW, "up"],
        capture_output=True,
        text=True,
        timeout=60,
        env=clean_env(LEADFLOW_HTTP_WORKERS="2"),
    )
    assert done.returncode == 1
    assert "--workers" in done.stderr
