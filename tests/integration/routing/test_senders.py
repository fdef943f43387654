"""Email and webhook delivery against real local SMTP and HTTP servers."""

from __future__ import annotations

import email
import email.policy
import html
import json
import shutil
import socket
import ssl
import subprocess
import threading
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from email.message import EmailMessage
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import httpx
import pytest
from aiosmtpd.controller import Controller
from aiosmtpd.smtp import SMTP as SMTPServer
from aiosmtpd.smtp import Envelope, Session
from jinja2 import UndefinedError

from services.routing.domain.webhooks import verify
from services.routing.senders import (
    DeliveryError,
    RenderedEmail,
    SmtpConfig,
    render_email,
    send_email,
    send_webhook,
)

pytestmark = pytest.mark.integration

CHECKOUT_URL = "https://shop.example/checkouts/c-77?step=payment&utm_source=leadflow"
UNSUBSCRIBE_URL = "https://leadflow.example/unsubscribe/lead-1.abcdef"
CART_CONTEXT: dict[str, Any] = {
    "lead": {"first_name": "Ada", "email": "ada@example.com"},
    "cart": {
        "items": [
            {"title": "Walnut Desk Organiser", "quantity": 1, "price": 49.5},
            {"title": "Linen Notebook", "quantity": 3, "price": "12"},
        ],
        "value": 85.5,
        "currency": "EUR",
        "checkout_url": CHECKOUT_URL,
    },
    "unsubscribe_url": UNSUBSCRIBE_URL,
}


def _free_port() -> int:
    """A TCP port on 127.0.0.1 that nothing listens on right now."""
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


# --- rendering ----------------------------------------------------------------------------


@pytest.mark.parametrize("template", ["abandoned_cart", "cart_reminder"])
def test_cart_emails_list_items_total_checkout_and_unsubscribe_in_both_parts(
    template: str,
) -> None:
    rendered = render_email(template=template, context=CART_CONTEXT)
    for body, url in ((rendered.text, CHECKOUT_URL), (rendered.html, html.escape(CHECKOUT_URL))):
        assert "Ada" in body
        assert "Walnut Desk Organiser" in body
        assert "Linen Notebook" in body
        assert "85.50 EUR" in body
        assert url in body
        assert UNSUBSCRIBE_URL in body
    assert f'href="{html.escape(CHECKOUT_URL)}"' in rendered.html
    assert f'href="{UNSUBSCRIBE_URL}"' in rendered.html


def test_the_two_cart_emails_read_differently() -> None:
    first = render_email(template="abandoned_cart", context=CART_CONTEXT)
    second = render_email(template="cart_reminder", context=CART_CONTEXT)
    assert first.subject != second.subject
    assert first.text != second.text


def test_subject_is_a_single_stripped_line() -> None:
    context = {**CART_CONTEXT, "lead": {"first_name": "Ada\r\nBcc: victim@example.com"}}
    subject = render_email(template="abandoned_cart", context=context).subject
    assert subject == "Ada Bcc: victim@example.com, you left something in your cart"


def test_html_part_escapes_markup_but_text_part_keeps_it_verbatim() -> None:
    cart = {**CART_CONTEXT["cart"], "items": [{"title": "<b>Bold</b> & Co", "quantity": 1}]}
    rendered = render_email(template="abandoned_cart", context={**CART_CONTEXT, "cart": cart})
    assert "&lt;b&gt;Bold&lt;/b&gt; &amp; Co" in rendered.html
    assert "<b>Bold</b>" not in rendered.html
    assert "<b>Bold</b> & Co" in rendered.text


def test_event_followup_renders_without_webinar_details() -> None:
    rendered = render_email(
        template="event_followup",
        context={"lead": {}, "webinar": {}, "unsubscribe_url": UNSUBSCRIBE_URL},
    )
    assert rendered.subject == "Thanks for joining our webinar"
    assert "Hi there" in rendered.text
    assert UNSUBSCRIBE_URL in rendered.text
    assert f'href="{UNSUBSCRIBE_URL}"' in rendered.html


def test_event_followup_names_the_webinar_and_its_topic() -> None:
    webinar = {"name": "Pipeline Clinic", "topic": "lead scoring"}
    rendered = render_email(
        template="event_followup",
        context={"lead": {"first_name": "Ada"}, "webinar": webinar, "unsubscribe_url": "u"},
    )
    assert rendered.subject == "Thanks for joining Pipeline Clinic"
    for body in (rendered.text, rendered.html):
        assert "Pipeline Clinic on lead scoring" in body


def test_trial_nudge_greets_the_lead_and_offers_unsubscribe() -> None:
    rendered = render_email(
        template="trial_nudge",
        context={"lead": {"first_name": "Ada"}, "unsubscribe_url": UNSUBSCRIBE_URL},
    )
    assert rendered.subject == "How is your trial going, Ada?"
    assert "Hi Ada" in rendered.text
    assert UNSUBSCRIBE_URL in rendered.text
    assert f'href="{UNSUBSCRIBE_URL}"' in rendered.html


def test_missing_required_context_fails_loudly() -> None:
    with pytest.raises(UndefinedError):
        render_email(template="trial_nudge", context={"lead": {}})


# --- SMTP ---------------------------------------------------------------------------------


@dataclass
class RecordingHandler:
    """An aiosmtpd handler that keeps every accepted message and refuses chosen recipients."""

    refuse: dict[str, str] = field(default_factory=dict)
    envelopes: list[Envelope] = field(default_factory=list)

    async def handle_RCPT(
        self,
        server: SMTPServer,
        session: Session,
        envelope: Envelope,
        address: str,
        rcpt_options: list[str],
    ) -> str:
        """Refuse the recipients named in `refuse` with their reply, accept the rest."""
        if address in self.refuse:
            return self.refuse[address]
        envelope.rcpt_tos.append(address)
        return "250 OK"

    async def handle_DATA(self, server: SMTPServer, session: Session, envelope: Envelope) -> str:
        """Keep the message."""
        self.envelopes.append(envelope)
        return "250 Message accepted for delivery"


@pytest.fixture
def smtp_handler() -> RecordingHandler:
    """The recording handler behind the `smtp_server` fixture."""
    return RecordingHandler(
        refuse={
            "nobody@example.com": "550 no such user",
            "full@example.com": "452 mailbox full, try later",
        }
    )


@pytest.fixture
def smtp_server(smtp_handler: RecordingHandler) -> Iterator[SmtpConfig]:
    """A real SMTP server on 127.0.0.1 without STARTTLS or AUTH."""
    controller = Controller(smtp_handler, hostname="127.0.0.1", port=_free_port())
    controller.start()
    try:
        yield SmtpConfig(
            host="127.0.0.1",
            port=controller.port,
            sender="carts@leadflow.example",
            timeout_s=5.0,
        )
    finally:
        controller.stop()


def _received(handler: RecordingHandler) -> EmailMessage:
    """The single message the server accepted, parsed."""
    assert len(handler.envelopes) == 1
    message = email.message_from_bytes(handler.envelopes[0].content, policy=email.policy.default)
    assert isinstance(message, EmailMessage)
    return message


def _send_cart_email(config: SmtpConfig, *, to: str = "ada@example.com") -> RenderedEmail:
    """Send the abandoned-cart email and return what was rendered."""
    rendered = render_email(template="abandoned_cart", context=CART_CONTEXT)
    send_email(
        config=config,
        to=to,
        email=rendered,
        message_id="action:lead-1/abandoned_cart#1",
        unsubscribe_url=UNSUBSCRIBE_URL,
        unsubscribe_mailto="unsubscribe+lead-1@leadflow.example",
    )
    return rendered


def test_email_is_delivered_with_headers_and_both_parts(
    smtp_server: SmtpConfig, smtp_handler: RecordingHandler
) -> None:
    rendered = _send_cart_email(smtp_server)

    envelope = smtp_handler.envelopes[0] if smtp_handler.envelopes else None
    assert envelope is not None
    assert envelope.mail_from == "carts@leadflow.example"
    assert envelope.rcpt_tos == ["ada@example.com"]
    message = _received(smtp_handler)
    assert message["Subject"] == rendered.subject == "Ada, you left something in your cart"
    assert message["From"] == "carts@leadflow.example"
    assert message["To"] == "ada@example.com"
    assert message["Message-ID"] == "<action_lead-1_abandoned_cart_1@leadflow>"
    assert message["Date"] is not None
    assert message["List-Unsubscribe"] == (
        f"<{UNSUBSCRIBE_URL}>, <mailto:unsubscribe+lead-1@leadflow.example>"
    )
    assert message["List-Unsubscribe-Post"] == "List-Unsubscribe=One-Click"

    text_part = message.get_body(preferencelist=("plain",))
    html_part = message.get_body(preferencelist=("html",))
    assert text_part is not None and html_part is not None
    text, markup = text_part.get_content(), html_part.get_content()
    for body, checkout in ((text, CHECKOUT_URL), (markup, html.escape(CHECKOUT_URL))):
        assert "Walnut Desk Organiser" in body
        assert "Linen Notebook" in body
        assert "85.50 EUR" in body
        assert checkout in body
        assert UNSUBSCRIBE_URL in body


def test_list_unsubscribe_has_only_the_url_without_a_mailto(
    smtp_server: SmtpConfig, smtp_handler: RecordingHandler
) -> None:
    send_email(
        config=smtp_server,
        to="ada@example.com",
        email=RenderedEmail(subject="Hello", text="hi", html="<p>hi</p>"),
        message_id="k1",
        unsubscribe_url=UNSUBSCRIBE_URL,
    )
    assert _received(smtp_handler)["List-Unsubscribe"] == f"<{UNSUBSCRIBE_URL}>"


def test_recipient_refused_with_5xx_is_a_permanent_failure(
    smtp_server: SmtpConfig, smtp_handler: RecordingHandler
) -> None:
    with pytest.raises(DeliveryError) as failure:
        _send_cart_email(smtp_server, to="nobody@example.com")
    assert failure.value.permanent is True
    assert "550" in str(failure.value)
    assert smtp_handler.envelopes == []


def test_recipient_refused_with_4xx_is_a_temporary_failure(
    smtp_server: SmtpConfig, smtp_handler: RecordingHandler
) -> None:
    with pytest.raises(DeliveryError) as failure:
        _send_cart_email(smtp_server, to="full@example.com")
    assert failure.value.permanent is False
    assert smtp_handler.envelopes == []


def test_closed_smtp_port_is_a_temporary_failure() -> None:
    config = SmtpConfig(host="127.0.0.1", port=_free_port(), timeout_s=2.0)
    with pytest.raises(DeliveryError) as failure:
        _send_cart_email(config)
    assert failure.value.permanent is False


def test_login_against_a_server_without_auth_is_a_temporary_failure(
    smtp_server: SmtpConfig, smtp_handler: RecordingHandler
) -> None:
    # aiosmtpd only offers AUTH over TLS; a missing AUTH is a configuration problem to fix.
    config = SmtpConfig(
        host=smtp_server.host, port=smtp_server.port, username="leadflow", password="secret"
    )
    with pytest.raises(DeliveryError) as failure:
        _send_cart_email(config)
    assert failure.value.permanent is False
    assert smtp_handler.envelopes == []


def test_malformed_recipient_header_is_a_permanent_failure(smtp_server: SmtpConfig) -> None:
    with pytest.raises(DeliveryError) as failure:
        _send_cart_email(smtp_server, to="ada@example.com\r\nBcc: victim@example.com")
    assert failure.value.permanent is True


@pytest.fixture
def self_signed_tls(tmp_path: Path) -> ssl.SSLContext:
    """A server TLS context with a certificate no client trusts."""
    openssl = shutil.which("openssl")
    if openssl is None:
        pytest.skip("openssl is needed to make a test certificate")
    cert, key = tmp_path / "cert.pem", tmp_path / "key.pem"
    request = ["req", "-x509", "-newkey", "rsa:2048", "-nodes", "-days", "1", "-subj", "/CN=x"]
    subprocess.run(
        [openssl, *request, "-keyout", str(key), "-out", str(cert)],
        check=True,
        capture_output=True,
    )
    context = ssl.create_default_context(ssl.Purpose.CLIENT_AUTH)
    context.load_cert_chain(cert, key)
    return context


def test_offered_starttls_is_used_and_an_untrusted_certificate_stops_the_send(
    smtp_handler: RecordingHandler, self_signed_tls: ssl.SSLContext
) -> None:
    controller = Controller(
        smtp_handler, hostname="127.0.0.1", port=_free_port(), tls_context=self_signed_tls
    )
    controller.start()
    try:
        config = SmtpConfig(host="127.0.0.1", port=controller.port, timeout_s=5.0)
        with pytest.raises(DeliveryError) as failure:
            _send_cart_email(config)
    finally:
        controller.stop()
    assert failure.value.permanent is False
    assert "certificate" in str(failure.value).lower()
    # Never falls back to sending in the clear.
    assert smtp_handler.envelopes == []


# --- webhooks -----------------------------------------------------------------------------

WEBHOOK_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
PAYLOAD: dict[str, Any] = {
    "type": "lead.abandoned_cart",
    "lead_id": "lead-1",
    "cart": {"value": 85.5, "currency": "EUR", "title": "Désk"},
}


@dataclass
class RecordedRequest:
    """One request the webhook receiver saw."""

    path: str
    headers: dict[str, str]
    body: bytes


@dataclass
class WebhookReceiver:
    """A local HTTP endpoint that records requests and answers with `status`."""

    url: str
    status: int = 200
    requests: list[RecordedRequest] = field(default_factory=list)


@pytest.fixture
def receiver() -> Iterator[WebhookReceiver]:
    """A real HTTP server in a thread on a free port."""
    state = WebhookReceiver(url="")

    class Handler(BaseHTTPRequestHandler):
        def do_POST(self) -> None:
            length = int(self.headers.get("Content-Length", "0"))
            state.requests.append(
                RecordedRequest(
                    path=self.path,
                    headers={k.lower(): v for k, v in self.headers.items()},
                    body=self.rfile.read(length),
                )
            )
            self.send_response(state.status)
            self.send_header("Content-Length", "0")
            self.end_headers()

        def log_message(self, format: str, *args: Any) -> None:
            pass

    server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=server.serve_forever, args=(0.05,), daemon=True)
    thread.start()
    state.url = f"http://127.0.0.1:{server.server_address[1]}/hooks/leadflow"
    try:
        yield state
    finally:
        server.shutdown()
        server.server_close()
        thread.join(timeout=5)


@pytest.fixture
def http_client() -> Iterator[httpx.Client]:
    """A plain httpx client with a short timeout."""
    with httpx.Client(timeout=5.0) as client:
        yield client


def _deliver(client: httpx.Client, url: str, *, timestamp: int | None = None) -> int:
    """Send PAYLOAD as a signed webhook."""
    return send_webhook(
        client=client,
        url=url,
        secret=WEBHOOK_SECRET,
        msg_id="msg_action-42",
        payload=PAYLOAD,
        timestamp=int(time.time()) if timestamp is None else timestamp,
    )


def test_webhook_posts_the_json_payload_with_verifiable_signature_headers(
    receiver: WebhookReceiver, http_client: httpx.Client
) -> None:
    receiver.status = 202
    sent_at = int(time.time())

    assert _deliver(http_client, receiver.url, timestamp=sent_at) == 202

    assert len(receiver.requests) == 1
    request = receiver.requests[0]
    assert request.path == "/hooks/leadflow"
    assert json.loads(request.body) == PAYLOAD
    assert b": " not in request.body and b", " not in request.body
    assert request.headers["content-type"] == "application/json"
    assert request.headers["webhook-id"] == "msg_action-42"
    assert request.headers["webhook-timestamp"] == str(sent_at)
    assert verify(
        secret=WEBHOOK_SECRET,
        msg_id=request.headers["webhook-id"],
        timestamp=int(request.headers["webhook-timestamp"]),
        body=request.body,
        header=request.headers["webhook-signature"],
        now=int(time.time()),
    )
    assert not verify(
        secret=WEBHOOK_SECRET,
        msg_id=request.headers["webhook-id"],
        timestamp=int(request.headers["webhook-timestamp"]),
        body=request.body.replace(b"lead-1", b"lead-2"),
        header=request.headers["webhook-signature"],
        now=int(time.time()),
    )


@pytest.mark.parametrize("status", [500, 502, 503, 408, 429])
def test_webhook_answered_with_a_retryable_status_is_a_temporary_failure(
    receiver: WebhookReceiver, http_client: httpx.Client, status: int
) -> None:
    receiver.status = status
    with pytest.raises(DeliveryError) as failure:
        _deliver(http_client, receiver.url)
    assert failure.value.permanent is False
    assert str(status) in str(failure.value)
    assert len(receiver.requests) == 1


@pytest.mark.parametrize("status", [400, 401, 404, 410, 422])
def test_webhook_answered_with_a_client_error_is_a_permanent_failure(
    receiver: WebhookReceiver, http_client: httpx.Client, status: int
) -> None:
    receiver.status = status
    with pytest.raises(DeliveryError) as failure:
        _deliver(http_client, receiver.url)
    assert failure.value.permanent is True
    assert str(status) in str(failure.value)


def test_webhook_to_a_closed_port_is_a_temporary_failure(http_client: httpx.Client) -> None:
    with pytest.raises(DeliveryError) as failure:
        _deliver(http_client, f"http://127.0.0.1:{_free_port()}/hooks")
    assert failure.value.permanent is False


def test_webhook_to_an_unsupported_scheme_is_a_permanent_failure(
    http_client: httpx.Client,
) -> None:
    with pytest.raises(DeliveryError) as failure:
        _deliver(http_client, "ftp://127.0.0.1/hooks")
    assert failure.value.permanent is True
