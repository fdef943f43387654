"""Webhook authentication as each platform does it, checked in constant time."""

from __future__ import annotations

import base64
import binascii
import hashlib
import hmac
from collections.abc import Mapping
from enum import Enum


class Verdict(Enum):
    """The outcome of checking a request's credentials."""

    OK = "ok"
    MISSING = "missing"
    BAD = "bad"
    STALE = "stale"


def segment_basic_auth(authorization: str | None, *, write_key: str) -> Verdict:
    """Segment's HTTP Basic auth: the write key as the user name, an empty password."""
    if not authorization:
        return Verdict.MISSING
    scheme, _, encoded = authorization.partition(" ")
    if scheme.lower() != "basic":
        return Verdict.BAD
    try:
        user = base64.b64decode(encoded.strip(), validate=True).decode().partition(":")[0]
    except (binascii.Error, ValueError):  # ValueError: non-ASCII characters in the header
        return Verdict.BAD
    return Verdict.OK if hmac.compare_digest(user.encode(), write_key.encode()) else Verdict.BAD


def segment_signature(body: bytes, signature: str | None, *, secret: str) -> Verdict:
    """Segment's `X-Signature`: hex HMAC-SHA1 of the raw body with the shared secret."""
    if not signature:
        return Verdict.MISSING
    expected = hmac.new(secret.encode(), body, hashlib.sha1).hexdigest().encode()
    given = signature.strip().lower().encode()  # bytes: str comparison refuses non-ASCII
    return Verdict.OK if hmac.compare_digest(expected, given) else Verdict.BAD


def shopify_hmac(body: bytes, header: str | None, *, secret: str) -> Verdict:
    """Shopify's `X-Shopify-Hmac-Sha256`: base64 HMAC-SHA256 of the raw body."""
    if not header:
        return Verdict.MISSING
    expected = base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest())
    return Verdict.OK if hmac.compare_digest(expected, header.strip().encode()) else Verdict.BAD


def shopify_secret(
    shop: str | None, *, shops: Mapping[str, str], default: str | None
) -> str | None:
    """The secret a shop's webhooks are signed with: the shop's own where it has one, else the
    secret for every shop (`default`); None when neither applies (an unknown shop)."""
    if shop is not None and shop in shops:
        return shops[shop]
    return default


def hubspot_v3(
    *,
    method: str,
    uri: str,
    body: bytes,
    timestamp: str | None,
    signature: str | None,
    secret: str,
    now_ms: int,
    max_age_ms: int,
) -> Verdict:
    """HubSpot's v3 signature: base64 HMAC-SHA256 of method + URI + body + timestamp, refused
    when the timestamp is more than `max_age_ms` away from now (a replay)."""
    if not signature or not timestamp:
        return Verdict.MISSING
    try:
        sent_ms = int(timestamp)
    except ValueError:
        return Verdict.BAD
    if abs(now_ms - sent_ms) > max_age_ms:
        return Verdict.STALE
    message = method.upper().encode() + uri.encode() + body + timestamp.encode()
    expected = base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest())
    return Verdict.OK if hmac.compare_digest(expected, signature.strip().encode()) else Verdict.BAD
