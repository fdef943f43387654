"""A real Apache Kafka broker for the tests: single node, KRaft, on a free port.

The jars come from Maven Central through `scripts/kafka.sh fetch` (cached under `.cache/`);
this module writes a test-friendly `server.properties`, runs `kafka-storage format` and then the
broker, each as `java -cp <libs>/* <main class>`, exactly what Kafka's own shell scripts do.
"""

from __future__ import annotations

import base64
import contextlib
import os
import re
import shutil
import signal
import subprocess
import tempfile
import time
import uuid
from pathlib import Path

from leadflow.embedded import BrokerError, free_port, port_is_open

REPO = Path(__file__).resolve().parents[2]
SCRIPT = REPO / "scripts" / "kafka.sh"
_VERSION_RE = re.compile(r"Kafka version: (\S+)")
_STARTED = "Kafka Server started"

# Test-friendly settings: one node, replication factor 1 everywhere, groups that form at once
# and accept the tests' short session timeouts, internal topics with one partition (they are
# created on first use, and fifty partitions would make every first group join slow).
_SERVER_PROPERTIES = """\
process.roles=broker,controller
node.id=1
controller.quorum.voters=1@127.0.0.1:{controller_port}
listeners=PLAINTEXT://127.0.0.1:{port},CONTROLLER://127.0.0.1:{controller_port}
advertised.listeners=PLAINTEXT://127.0.0.1:{advertised_port}
listener.security.protocol.map=PLAINTEXT:PLAINTEXT,CONTROLLER:PLAINTEXT
controller.listener.names=CONTROLLER
inter.broker.listener.name=PLAINTEXT
log.dirs={data}
num.partitions=1
default.replication.factor=1
min.insync.replicas=1
auto.create.topics.enable=false
offsets.topic.replication.factor=1
offsets.topic.num.partitions=1
transaction.state.log.replication.factor=1
transaction.state.log.min.isr=1
transaction.state.log.num.partitions=1
share.coordinator.state.topic.replication.factor=1
share.coordinator.state.topic.min.isr=1
group.initial.rebalance.delay.ms=0
group.min.session.timeout.ms=1000
group.max.session.timeout.ms=300000
"""

_LOG4J2 = """\
Configuration:
  Appenders:
    Console:
      name: STDOUT
      PatternLayout:
        pattern: "[%d] %p %m (%c)%n"
  Loggers:
    Root:
      level: INFO
      AppenderRef:
        - ref: STDOUT
    Logger:
      - name: kafka.server.KafkaConfig
        level: WARN
      - name: org.apache.kafka.common.config.AbstractConfig
        level: WARN
"""


def kafka_libs() -> Path:
    """The folder of Kafka's jars, fetched from Maven Central on first use."""
    try:
        out = subprocess.run(
            ["bash", str(SCRIPT), "fetch"], check=True, capture_output=True, text=True
        )
    except subprocess.CalledProcessError as exc:
        raise BrokerError(f"scripts/kafka.sh fetch failed:\n{exc.stderr}") from exc
    return Path(out.stdout.strip().splitlines()[-1])


def kafka_version() -> str:
    """The Kafka release tests/kafka/pom.xml names."""
    out = subprocess.run(
        ["bash", str(SCRIPT), "version"], check=True, capture_output=True, text=True
    )
    return out.stdout.strip()


def _own_group_with_parent_death() -> None:
    """In the child: its own process group (a Ctrl-C of the test run reaches pytest, which
    stops the broker), and SIGTERM if the parent dies, so no broker is orphaned."""
    os.setpgid(0, 0)
    with contextlib.suppress(Exception):
        import ctypes

        ctypes.CDLL("libc.so.6", use_errno=True).prctl(1, signal.SIGTERM)


class KafkaBroker:
    """An Apache Kafka broker (KRaft, one node) with its data in a temporary folder."""

    kind = "kafka"

    def __init__(
        self,
        *,
        log_path: Path | None = None,
        heap: str = "768m",
        port: int = 0,
        advertised_port: int | None = None,
    ) -> None:
        self.host = "127.0.0.1"
        self.port = port
        # Where clients are told to connect, when not the listener itself (a proxy in front).
        self.advertised_port = advertised_port
        self.log_path = log_path
        self.heap = heap
        self.version: str | None = None
        self._workdir: Path | None = None
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process else None

    def _java(self, libs: Path, main: str, *args: str) -> list[str]:
        log4j = self._workdir / "log4j2.yaml"  # type: ignore[operator]
        return [
            shutil.which("java") or "java",
            "-Xms128m",
            f"-Xmx{self.heap}",
            "-XX:+UseG1GC",
            "-Djava.awt.headless=true",
            f"-Dlog4j2.configurationFile={log4j}",
            "-cp",
            f"{libs}/*",
            main,
            *args,
        ]

    def start(self, *, timeout_s: float = 60.0) -> str:
        """Format the storage, start the broker, wait until it serves; returns bootstrap servers."""
        libs = kafka_libs()
        self._workdir = Path(tempfile.mkdtemp(prefix="leadflow-kafka-"))
        self.port = self.port or free_port(self.host)
        controller_port = free_port(self.host)
        config = self._workdir / "server.properties"
        config.write_text(
            _SERVER_PROPERTIES.format(
                port=self.port,
                advertised_port=self.advertised_port or self.port,
                controller_port=controller_port,
                data=self._workdir / "data",
            )
        )
        (self._workdir / "log4j2.yaml").write_text(_LOG4J2)
        log_path = self.log_path or self._workdir / "broker.log"
        formatted = subprocess.run(
            self._java(
                libs,
                "kafka.tools.StorageTool",
                "format",
                # One argument with "=": an id may start with "-", which would read as an option.
                "--cluster-id="
                + base64.urlsafe_b64encode(uuid.uuid4().bytes).rstrip(b"=").decode(),
                "--config",
                str(config),
                "--ignore-formatted",
            ),
            capture_output=True,
            text=True,
        )
        if formatted.returncode != 0:
            raise BrokerError(f"kafka-storage format failed:\n{formatted.stdout}{formatted.stderr}")
        with open(log_path, "ab") as out:
            self._process = subprocess.Popen(
                self._java(libs, "kafka.Kafka", str(config)),
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                preexec_fn=_own_group_with_parent_death,
            )
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"Kafka exited at start with code {self._process.returncode}; see {log_path}"
                )
            text = log_path.read_text(errors="replace")
            if _STARTED in text and port_is_open(self.host, self.port):
                found = _VERSION_RE.search(text)
                self.version = found.group(1) if found else None
                return self.bootstrap_servers
            time.sleep(0.1)
        self.stop()
        raise BrokerError(f"Kafka did not start on {self.bootstrap_servers} in {timeout_s}s")

    def stop(self, *, timeout_s: float = 15.0) -> None:
        """Stop it (SIGTERM: a controlled shutdown; SIGKILL if it lingers); drop its data."""
        process, self._process = self._process, None
        if process is not None and process.poll() is None:
            process.terminate()
            try:
                process.wait(timeout=timeout_s)
            except subprocess.TimeoutExpired:
                process.kill()
                process.wait(timeout=10)
        if self._workdir is not None:
            shutil.rmtree(self._workdir, ignore_errors=True)
            self._workdir = None

    def __enter__(self) -> KafkaBroker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
