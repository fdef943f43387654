"""Standard Webhooks signing and verification, and signed unsubscribe tokens.

Pure functions over the standard library: the senders sign outgoing webhooks with them, and
the unsubscribe endpoint checks the token a lead clicked.
"""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
import secrets
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import datetime, timedelta

SECRET_PREFIX = "whsec_"
SIGNATURE_VERSION = "v1"
UNSUBSCRIBE_SIGNATURE_CHARS = 32
# A subscription's secret: `whsec_` and the base64 of this many random bytes.
SUBSCRIPTION_SECRET_BYTES = 32
# After a rotation the previous secret keeps signing this long (unless the rotation says).
ROTATION_GRACE = timedelta(hours=24)


def _key(secret: str) -> bytes:
    """The HMAC key a Standard Webhooks secret stands for."""
    if not secret.startswith(SECRET_PREFIX):
        return secret.encode()
    try:
        return base64.b64decode(secret.removeprefix(SECRET_PREFIX), validate=True)
    except binascii.Error as exc:
        # A malformed configured secret must fail loudly, not sign with the wrong key.
        raise ValueError("webhook secret after 'whsec_' is not valid base64") from exc


def _digest(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The base64 HMAC-SHA256 of the Standard Webhooks signed content."""
    signed = f"{msg_id}.{timestamp}.".encode() + body
    mac = hmac.new(_key(secret), signed, hashlib.sha256).digest()
    return base64.b64encode(mac).decode("ascii")


def sign(*, secret: str, msg_id: str, timestamp: int, body: bytes) -> str:
    """The `v1,<base64>` signature of a webhook body under the Standard Webhooks scheme."""
    digest = _digest(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body)
    return f"{SIGNATURE_VERSION},{digest}"


def verify(
    *,
    secret: str,
    msg_id: str,
    timestamp: int,
    body: bytes,
    header: str,
    now: int,
    tolerance_s: int = 300,
) -> bool:
    """True when a `v1` signature in the header matches and the timestamp is fresh."""
    # Both directions: a far-future timestamp would otherwise extend a replay window.
    if abs(now - timestamp) > tolerance_s:
        return False
    expected = _digest(secret=secret, msg_id=msg_id, timestamp=timestamp, body=body).encode()
    matched = False
    for entry in header.split():
        version, _, signature = entry.partition(",")
        if version != SIGNATURE_VERSION:
            continue
        # No early exit, so timing does not reveal which entry matched.
        matched |= hmac.compare_digest(expected, signature.encode())
    return matched


def webhook_headers(
    *,
    secret: str,
    msg_id: str,
    timestamp: int,
    body: bytes,
    also_signed_by: Sequence[str] = (),
) -> dict[str, str]:
    """The Standard Webhooks request headers for one delivery attempt; with `also_signed_by`
    (secrets in their grace period after a rotation), one space-separated `v1,` signature
    per secret, so a receiver still holding an older secret verifies too."""
    signatures = [
        sign(secret=key, msg_id=msg_id, timestamp=timestamp, body=body)
        for key in (secret, *also_signed_by)
    ]
    return {
        "webhook-id": msg_id,
        "webhook-timestamp": str(timestamp),
        "webhook-signature": " ".join(signatures),
        "content-type": "application/json",
    }


def new_secret() -> str:
    """A new subscription secret: `whsec_` and the base64 of 32 random bytes."""
    return SECRET_PREFIX + base64.b64encode(secrets.token_bytes(SUBSCRIPTION_SECRET_BYTES)).decode()


@dataclass(frozen=True)
class RetiredSecret:
    """A subscription's previous secret, still signing until `expires_at`."""

    secret: str
    expires_at: datetime


def signing_secrets(
    *, current: str, retired: Sequence[RetiredSecret], now: datetime
) -> tuple[str, list[str]]:
    """The secrets that sign a delivery now: the current one, and the retired ones whose
    grace period has not ended (newest first)."""
    live = sorted((r for r in retired if r.expires_at > now), key=lambda r: r.expires_at)
    return current, [r.secret for r in reversed(live)]


def rotate(
    *, current: str, retired: Sequence[RetiredSecret], now: datetime, grace: timedelta
) -> tuple[str, list[RetiredSecret]]:
    """A new secret, and the retired ones after the rotation: the current one keeps signing
    for `grace` (not at all for a zero grace), expired ones are dropped."""
    kept = [r for r in retired if r.expires_at > now]
    if grace > timedelta(0):
        kept.append(RetiredSecret(current, now + grace))
    return new_secret(), kept


def _unsubscribe_signature(*, secret: str, lead_id: str) -> str:
    """The truncated URL-safe HMAC that vouches for a lead id."""
    mac = hmac.new(secret.encode(), lead_id.encode(), hashlib.sha256).digest()
    return base64.urlsafe_b64encode(mac).decode("ascii")[:UNSUBSCRIBE_SIGNATURE_CHARS]


def unsubscribe_token(*, secret: str, lead_id: str) -> str:
    """A URL-safe token naming the lead, signed so it cannot be forged for another lead."""
    return f"{lead_id}.{_unsubscribe_signature(secret=secret, lead_id=lead_id)}"


def lead_of_unsubscribe_token(*, secret: str, token: str) -> str | None:
    """The lead id a genuine token names, or None for a forged or damaged one."""
    # The signature never contains a dot, so the last one separates it even if ids have dots.
    lead_id, dot, signature = token.rpartition(".")
    if not dot or not lead_id:
        return None
    expected = _unsubscribe_signature(secret=secret, lead_id=lead_id)
    if not hmac.compare_digest(expected.encode(), signature.encode()):
        return None
    return lead_id
