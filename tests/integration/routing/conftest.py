"""A real SMTP server (aiosmtpd), a real webhook receiver, and a full runtime configured to use
them with test-short delays."""

from __future__ import annotations

import asyncio
import email
import email.policy
import json
import socket
import threading
import time
from collections.abc import AsyncIterator, Callable, Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from pydantic import SecretStr

from leadflow.runtime import Runtime
from shared.config import Settings
from tests.conftest import make_key

WEBHOOK_SECRET = "whsec_" + "dGVzdC13ZWJob29rLXNlY3JldC0xMjM0NTY3ODkw"

CONFIG = """
version = "test-routing"
default_team = "marketing"

[[rules]]
name = "sql_to_sales"
team = "sales"
qualifications = ["sql"]

[[rules]]
name = "mql_to_sdr"
team = "sdr"
qualifications = ["mql"]

[teams.marketing]

[teams.sales]
escalation = "reassign"
webhook_url = "{receiver}/alerts/sales"
sla = {{ sql = "{sla}" }}
members = [
    {{ id = "ana@seller.example" }},
    {{ id = "ben@seller.example" }},
    {{ id = "cai@seller.example" }},
]

[teams.sdr]
members = [{{ id = "jo@seller.example" }}]

[playbooks]
marketing_cap_s = "{cap}"

[playbooks.abandoned_cart]
delay_s = "{cart_delay}"

[playbooks.trial_nudge]
delay_s = "{trial_delay}"
"""


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@dataclass
class Mailbox:
    """Every message the SMTP server accepted, parsed."""

    messages: list[EmailMessage] = field(default_factory=list)
    delay_s: float = 0.0

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        if self.delay_s:
            await asyncio.sleep(self.delay_s)
        self.messages.append(
            email.message_from_bytes(envelope.content, policy=email.policy.default)  # type: ignore[arg-type]
        )
        return "250 OK"

    def to(self, address: str) -> list[EmailMessage]:
        return [m for m in self.messages if m["To"] == address]

    def wait_for(self, count: int, timeout_s: float = 15.0) -> None:
        deadline = time.monotonic() + timeout_s
        while len(self.messages) < count and time.monotonic() < deadline:
            time.sleep(0.05)


@pytest.fixture
def mailbox() -> Iterator[tuple[Mailbox, int]]:
    """An aiosmtpd server on a free port and what it received."""
    box, port = Mailbox(), free_port()
    controller = Controller(box, hostname="127.0.0.1", port=port)
    controller.start()
    yield box, port
    controller.stop()


@dataclass
class Receiver:
    """Requests the local webhook receiver got: (path, headers, body)."""

    requests: list[tuple[str, dict[str, str], bytes]] = field(default_factory=list)
    url: str = ""


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    """A real HTTP server on a free port that records every POST and answers 204."""
    got = Receiver()

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            body = self.rfile.read(int(self.headers.get("content-length", 0)))
            got.requests.append((self.path, {k.lower(): v for k, v in self.headers.items()}, body))
            self.send_response(204)
            self.end_headers()

        def log_message(self, *args: object) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    got.url = f"http://127.0.0.1:{server.server_address[1]}"
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield got
    server.shutdown()


def routing_settings(
    settings: Settings,
    tmp_path: Path,
    *,
    smtp_port: int,
    receiver_url: str,
    sla: str = "4h",
    cap: str = "16h",
    cart_delay: str = "1s",
    trial_delay: str = "3d",
    **overrides: Any,
) -> Settings:
    """The test's settings with a routing config and SMTP/webhook targets of its own."""
    path = tmp_path / "routing.toml"
    path.write_text(
        CONFIG.format(
            receiver=receiver_url,
            sla=sla,
            cap=cap,
            cart_delay=cart_delay,
            trial_delay=trial_delay,
        )
    )
    return settings.model_copy(
        update={
            "routing_config": str(path),
            "smtp_host": "127.0.0.1",
            "smtp_port": smtp_port,
            "smtp_from": "hello@seller.example",
            "webhook_secret": SecretStr(WEBHOOK_SECRET),
            "actions_poll_interval_s": 0.2,
            "actions_retry_base_s": 0.2,
            "public_url": "http://leadflow.test",
            **overrides,
        }
    )


@pytest.fixture
def pipeline(settings: Settings, tmp_path: Path, mailbox, receiver) -> Iterator[Callable[..., Any]]:
    """`async with pipeline(**config) as (client, runtime)`: all services, an admin key."""
    from contextlib import asynccontextmanager

    started: list[Runtime] = []

    @asynccontextmanager
    async def start(**options: Any) -> AsyncIterator[tuple[httpx.AsyncClient, Runtime]]:
        own = routing_settings(
            settings, tmp_path, smtp_port=mailbox[1], receiver_url=receiver.url, **options
        )
        runtime = Runtime(settings=own, services=("ingest", "scoring", "routing"))
        started.append(runtime)
        app = runtime.start()
        assert runtime.wait_until_assigned(timeout_s=30)
        headers = {"Authorization": f"Bearer {make_key(runtime, 'admin')}"}
        transport = httpx.ASGITransport(app=app)
        async with httpx.AsyncClient(
            transport=transport, base_url="http://leadflow.test", headers=headers
        ) as client:
            yield client, runtime

    yield start
    for runtime in started:
        runtime.stop(timeout_s=3)


async def wait_until(check: Callable[[], Any], *, timeout_s: float = 15.0) -> Any:
    """Poll an async or sync check until it returns something truthy."""
    deadline = time.monotonic() + timeout_s
    last = None
    while time.monotonic() < deadline:
        last = check()
        if asyncio.iscoroutine(last):
            last = await last
        if last:
            return last
        await asyncio.sleep(0.1)
    raise AssertionError(f"condition never held; last: {last!r}")


def body_of(message: EmailMessage) -> tuple[str, str]:
    """The text and HTML parts of a message."""
    text = message.get_body(preferencelist=("plain",))
    html = message.get_body(preferencelist=("html",))
    return (text.get_content() if text else "", html.get_content() if html else "")


def json_body(raw: bytes) -> Any:
    return json.loads(raw)
