"""Delivery adapters for routing's follow-up actions: SMTP email and signed webhooks.

Both are blocking and meant to run in a worker thread. Every failure surfaces as a
`DeliveryError` whose `permanent` flag tells the caller whether retrying can help.
"""

from __future__ import annotations

import re
import smtplib
import ssl
from collections.abc import Mapping, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from decimal import Decimal, InvalidOperation
from email.message import EmailMessage
from email.utils import format_datetime
from pathlib import Path
from typing import Any

import httpx
import orjson
from jinja2 import Environment, FileSystemLoader, StrictUndefined

from services.routing.domain.webhooks import webhook_headers

TEMPLATES_DIR = Path(__file__).parent / "templates"
MESSAGE_ID_DOMAIN = "leadflow"
_UNSAFE_MESSAGE_ID_CHARS = re.compile(r"[^A-Za-z0-9._-]")
# Retrying these can succeed: the request timed out or the receiver asked us to slow down.
_RETRYABLE_CLIENT_STATUSES = frozenset({408, 429})
_RECEIVER_DOWN_STATUSES = frozenset({502, 503, 504})


@dataclass(frozen=True)
class SmtpConfig:
    """Where and as whom to submit email."""

    host: str
    port: int = 25
    username: str | None = None
    password: str | None = None
    sender: str = "leadflow@localhost"
    timeout_s: float = 10.0


class DeliveryError(Exception):
    """A delivery that did not happen; `permanent` means retrying cannot help, `outage` that
    the destination could not be reached at all (nothing was sent: wait for it, not an
    attempt)."""

    def __init__(
        self, message: str, *, permanent: bool, outage: bool = False, status: int | None = None
    ) -> None:
        super().__init__(message)
        self.permanent = permanent
        self.outage = outage and not permanent
        self.status = status  # the HTTP status a webhook receiver answered, if it answered


@dataclass(frozen=True)
class RenderedEmail:
    """An email's subject line and its plain-text and HTML bodies."""

    subject: str
    text: str
    html: str


def _money(value: Any, currency: str = "") -> str:
    """An amount with two decimals and its currency, or the value as given if not a number."""
    try:
        amount = f"{Decimal(str(value)).quantize(Decimal('0.01')):f}"
    except (InvalidOperation, ValueError):
        amount = str(value)
    return f"{amount} {currency}".strip()


def _autoescape(name: str | None) -> bool:
    """Escape only the HTML bodies; subjects and text parts are not markup."""
    return name is not None and name.endswith(".html.j2")


_environment = Environment(
    loader=FileSystemLoader(TEMPLATES_DIR),
    autoescape=_autoescape,
    undefined=StrictUndefined,
    trim_blocks=True,
    lstrip_blocks=True,
    keep_trailing_newline=True,
)
_environment.filters["money"] = _money


def render_email(*, template: str, context: Mapping[str, Any]) -> RenderedEmail:
    """Render a template's subject, text and HTML parts with the given context."""
    values = dict(context)
    subject = _environment.get_template(f"{template}.subject.j2").render(values)
    return RenderedEmail(
        # Header injection and folded subjects both come from stray line breaks.
        subject=" ".join(subject.split()),
        text=_environment.get_template(f"{template}.txt.j2").render(values),
        html=_environment.get_template(f"{template}.html.j2").render(values),
    )


def _message_id(key: str) -> str:
    """An RFC 5322 Message-ID derived from the action's idempotency key."""
    local = _UNSAFE_MESSAGE_ID_CHARS.sub("_", key)
    if not local:
        raise ValueError("message_id must not be empty")
    return f"<{local}@{MESSAGE_ID_DOMAIN}>"


def _build_message(
    *,
    config: SmtpConfig,
    to: str,
    email: RenderedEmail,
    message_id: str,
    unsubscribe_url: str | None,
    unsubscribe_mailto: str | None,
) -> EmailMessage:
    """The MIME message: text with an HTML alternative and, for marketing email (with an
    `unsubscribe_url`), one-click unsubscribe headers."""
    message = EmailMessage()
    message["From"] = config.sender
    message["To"] = to
    message["Subject"] = email.subject
    message["Message-ID"] = _message_id(message_id)
    message["Date"] = format_datetime(datetime.now(UTC))
    if unsubscribe_url is not None:
        unsubscribe = f"<{unsubscribe_url}>"
        if unsubscribe_mailto:
            mailto = unsubscribe_mailto.removeprefix("mailto:")
            unsubscribe += f", <mailto:{mailto}>"
        message["List-Unsubscribe"] = unsubscribe
        # RFC 8058: lets mailbox providers unsubscribe with a single POST, no landing page.
        message["List-Unsubscribe-Post"] = "List-Unsubscribe=One-Click"
    message.set_content(email.text)
    message.add_alternative(email.html, subtype="html")
    return message


def _quit(smtp: smtplib.SMTP) -> None:
    """End the session politely, or just drop it; the outcome is already decided."""
    try:
        smtp.quit()
    except (smtplib.SMTPException, OSError):
        smtp.close()


def _refusal_error(exc: smtplib.SMTPException) -> DeliveryError:
    """Classify a server's refusal of the message by its SMTP reply codes."""
    if isinstance(exc, smtplib.SMTPRecipientsRefused):
        codes = [code for code, _ in exc.recipients.values()]
        detail = "; ".join(
            f"{rcpt}: {code} {msg!r}" for rcpt, (code, msg) in exc.recipients.items()
        )
        return DeliveryError(
            f"recipient refused: {detail}",
            permanent=bool(codes) and all(code >= 500 for code in codes),
        )
    if isinstance(exc, smtplib.SMTPResponseException):
        return DeliveryError(
            f"SMTP server refused the message: {exc.smtp_code} {exc.smtp_error!r}",
            permanent=exc.smtp_code >= 500,
        )
    if isinstance(exc, smtplib.SMTPNotSupportedError):
        # Raised when the address needs SMTPUTF8 and the server lacks it: the same every time.
        return DeliveryError(f"SMTP server cannot carry this message: {exc}", permanent=True)
    return DeliveryError(f"SMTP delivery failed: {exc}", permanent=False)


def send_email(
    *,
    config: SmtpConfig,
    to: str,
    email: RenderedEmail,
    message_id: str,
    unsubscribe_url: str | None,
    unsubscribe_mailto: str | None = None,
) -> None:
    """Submit one email over SMTP (`unsubscribe_url` None: an internal notification, no
    unsubscribe headers), upgrading to TLS when offered; raise DeliveryError on failure."""
    try:
        message = _build_message(
            config=config,
            to=to,
            email=email,
            message_id=message_id,
            unsubscribe_url=unsubscribe_url,
            unsubscribe_mailto=unsubscribe_mailto,
        )
    except ValueError as exc:
        # A malformed address or key fails identically on every retry.
        raise DeliveryError(f"cannot build the email: {exc}", permanent=True) from exc

    try:
        smtp = smtplib.SMTP(config.host, config.port, timeout=config.timeout_s)
    except (smtplib.SMTPException, OSError) as exc:
        raise DeliveryError(
            f"cannot reach SMTP server {config.host}:{config.port}: {exc}",
            permanent=False,
            outage=True,
        ) from exc

    try:
        # Session set-up failures (TLS, credentials, greeting) are about our configuration
        # or the relay's health, not this message, so they stay retryable.
        try:
            smtp.ehlo()
            if smtp.has_extn("starttls"):
                smtp.starttls(context=ssl.create_default_context())
                smtp.ehlo()
            if config.username:
                smtp.login(config.username, config.password or "")
        except (smtplib.SMTPException, OSError) as exc:
            # Nothing was sent yet; a dropped connection or a 421 greeting is the server's
            # outage, a refused login or TLS set-up is ours to fix (and counts as attempts).
            down = isinstance(exc, OSError | smtplib.SMTPServerDisconnected) or (
                isinstance(exc, smtplib.SMTPResponseException) and exc.smtp_code == 421
            )
            raise DeliveryError(
                f"SMTP session set-up failed: {exc}", permanent=False, outage=down
            ) from exc
        try:
            smtp.send_message(message, from_addr=config.sender, to_addrs=[to])
        except smtplib.SMTPException as exc:
            raise _refusal_error(exc) from exc
        except OSError as exc:
            raise DeliveryError(f"SMTP connection lost: {exc}", permanent=False) from exc
    finally:
        _quit(smtp)


def send_webhook(
    *,
    client: httpx.Client,
    url: str,
    secret: str,
    msg_id: str,
    payload: Mapping[str, Any],
    timestamp: int,
    also_signed_by: Sequence[str] = (),
) -> int:
    """POST a signed JSON payload and return the 2xx status; raise DeliveryError otherwise.
    `also_signed_by`: more secrets to sign with (a rotated secret in its grace period)."""
    try:
        body = orjson.dumps(dict(payload))
    except orjson.JSONEncodeError as exc:
        raise DeliveryError(f"payload is not JSON-serialisable: {exc}", permanent=True) from exc
    headers = webhook_headers(
        secret=secret, msg_id=msg_id, timestamp=timestamp, body=body, also_signed_by=also_signed_by
    )
    try:
        response = client.post(url, content=body, headers=headers)
    except (httpx.UnsupportedProtocol, httpx.InvalidURL) as exc:
        raise DeliveryError(f"bad webhook URL {url!r}: {exc}", permanent=True) from exc
    except (httpx.ConnectError, httpx.ConnectTimeout) as exc:
        # Not connected, so not sent: the receiver is down.
        raise DeliveryError(
            f"webhook to {url} failed: {exc!r}", permanent=False, outage=True
        ) from exc
    except httpx.TransportError as exc:
        raise DeliveryError(f"webhook to {url} failed: {exc!r}", permanent=False) from exc
    status = response.status_code
    if 200 <= status < 300:
        return status
    # 5xx, timeouts and throttling may clear up; any other answer, including a redirect the
    # client was not set to follow, will repeat itself. A gateway's 502/503/504 says the
    # receiver itself is down.
    permanent = status < 500 and status not in _RETRYABLE_CLIENT_STATUSES
    raise DeliveryError(
        f"webhook to {url} answered {status}",
        permanent=permanent,
        outage=status in _RECEIVER_DOWN_STATUSES,
        status=status,
    )
