"""Webhook authentication: Segment Basic auth and X-Signature, Shopify HMAC, HubSpot v3.

Expected signatures are computed here with hmac/hashlib/base64, independently of the code.
"""

from __future__ import annotations

import base64
import hashlib
import hmac

import pytest

from services.ingest.domain.signatures import (
    Verdict,
    hubspot_v3,
    segment_basic_auth,
    segment_signature,
    shopify_hmac,
    shopify_secret,
)

BODY = b'[{"eventId":1,"subscriptionType":"contact.creation"}]'
SECRET = "s3cr3t-shared"
WRITE_KEY = "wk_live_abc123"
NOW_MS = 1_794_318_425_000
MAX_AGE_MS = 300_000
URI = "https://leadflow.example/v1/sources/hubspot?x=1"


def _basic(user: str, password: str = "") -> str:
    return "Basic " + base64.b64encode(f"{user}:{password}".encode()).decode()


def _hubspot_sig(method: str, uri: str, body: bytes, timestamp: str, secret: str) -> str:
    message = f"{method}{uri}".encode() + body + timestamp.encode()
    return base64.b64encode(hmac.new(secret.encode(), message, hashlib.sha256).digest()).decode()


def _hubspot(
    *,
    body: bytes = BODY,
    timestamp: str | None = str(NOW_MS),
    signature: str | None = None,
    method: str = "POST",
) -> Verdict:
    if signature is None and timestamp is not None:
        signature = _hubspot_sig("POST", URI, BODY, timestamp, SECRET)
    return hubspot_v3(
        method=method,
        uri=URI,
        body=body,
        timestamp=timestamp,
        signature=signature,
        secret=SECRET,
        now_ms=NOW_MS,
        max_age_ms=MAX_AGE_MS,
    )


# --- Segment Basic auth -------------------------------------------------------------------


def test_segment_basic_auth_write_key_as_user_with_empty_password_is_ok() -> None:
    assert segment_basic_auth(_basic(WRITE_KEY), write_key=WRITE_KEY) is Verdict.OK


def test_segment_basic_auth_scheme_is_case_insensitive() -> None:
    header = _basic(WRITE_KEY).replace("Basic", "basic")
    assert segment_basic_auth(header, write_key=WRITE_KEY) is Verdict.OK


def test_segment_basic_auth_wrong_key_is_bad() -> None:
    assert segment_basic_auth(_basic("wk_other"), write_key=WRITE_KEY) is Verdict.BAD


def test_segment_basic_auth_missing_header_is_missing() -> None:
    assert segment_basic_auth(None, write_key=WRITE_KEY) is Verdict.MISSING
    assert segment_basic_auth("", write_key=WRITE_KEY) is Verdict.MISSING


def test_segment_basic_auth_non_basic_scheme_is_bad() -> None:
    assert segment_basic_auth(f"Bearer {WRITE_KEY}", write_key=WRITE_KEY) is Verdict.BAD


def test_segment_basic_auth_garbage_base64_is_bad() -> None:
    assert segment_basic_auth("Basic !!!not-base64!!!", write_key=WRITE_KEY) is Verdict.BAD


def test_segment_basic_auth_non_ascii_garbage_is_bad() -> None:
    # HTTP header values arrive decoded as latin-1, so non-ASCII characters can reach here.
    assert segment_basic_auth("Basic \u00e9\u00e9\u00e9\u00e9", write_key=WRITE_KEY) is Verdict.BAD


def test_segment_basic_auth_undecodable_bytes_are_bad() -> None:
    header = "Basic " + base64.b64encode(b"\xff\xfe:").decode()
    assert segment_basic_auth(header, write_key=WRITE_KEY) is Verdict.BAD


# --- Segment X-Signature ------------------------------------------------------------------


def test_segment_signature_hex_hmac_sha1_is_ok() -> None:
    signature = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert segment_signature(BODY, signature, secret=SECRET) is Verdict.OK


def test_segment_signature_tampered_body_is_bad() -> None:
    signature = hmac.new(SECRET.encode(), BODY, hashlib.sha1).hexdigest()
    assert segment_signature(BODY + b" ", signature, secret=SECRET) is Verdict.BAD


def test_segment_signature_missing_is_missing() -> None:
    assert segment_signature(BODY, None, secret=SECRET) is Verdict.MISSING


def test_segment_signature_non_ascii_header_is_bad() -> None:
    assert segment_signature(BODY, "\u00e9" * 40, secret=SECRET) is Verdict.BAD


# --- Shopify --------------------------------------------------------------------------------


def _shopify_sig(body: bytes, secret: str = SECRET) -> str:
    return base64.b64encode(hmac.new(secret.encode(), body, hashlib.sha256).digest()).decode()


def test_shopify_hmac_good_signature_is_ok() -> None:
    assert shopify_hmac(BODY, _shopify_sig(BODY), secret=SECRET) is Verdict.OK


def test_shopify_hmac_tampered_body_is_bad() -> None:
    assert shopify_hmac(BODY.replace(b"1", b"2"), _shopify_sig(BODY), secret=SECRET) is Verdict.BAD


def test_shopify_hmac_wrong_secret_is_bad() -> None:
    assert shopify_hmac(BODY, _shopify_sig(BODY, "other"), secret=SECRET) is Verdict.BAD


def test_shopify_hmac_missing_header_is_missing() -> None:
    assert shopify_hmac(BODY, None, secret=SECRET) is Verdict.MISSING


# --- HubSpot v3 -----------------------------------------------------------------------------


def test_hubspot_v3_good_signature_is_ok() -> None:
    assert _hubspot() is Verdict.OK


def test_hubspot_v3_lower_case_method_is_signed_upper_case() -> None:
    assert _hubspot(method="post") is Verdict.OK


def test_hubspot_v3_tampered_body_is_bad() -> None:
    assert _hubspot(body=BODY + b"x") is Verdict.BAD


def test_hubspot_v3_timestamp_is_part_of_the_signed_message() -> None:
    other = str(NOW_MS - 1000)
    signature = _hubspot_sig("POST", URI, BODY, str(NOW_MS), SECRET)
    assert _hubspot(timestamp=other, signature=signature) is Verdict.BAD


@pytest.mark.parametrize(("timestamp", "signature"), [(None, "sig"), (str(NOW_MS), "")])
def test_hubspot_v3_missing_header_is_missing(timestamp: str | None, signature: str) -> None:
    assert _hubspot(timestamp=timestamp, signature=signature) is Verdict.MISSING


def test_hubspot_v3_stale_timestamp_is_stale() -> None:
    assert _hubspot(timestamp=str(NOW_MS - MAX_AGE_MS - 1)) is Verdict.STALE


def test_hubspot_v3_timestamp_at_max_age_is_still_ok() -> None:
    assert _hubspot(timestamp=str(NOW_MS - MAX_AGE_MS)) is Verdict.OK


def test_hubspot_v3_future_timestamp_beyond_window_is_stale() -> None:
    assert _hubspot(timestamp=str(NOW_MS + MAX_AGE_MS + 1)) is Verdict.STALE


def test_hubspot_v3_non_numeric_timestamp_is_bad() -> None:
    assert _hubspot(timestamp="yesterday", signature="sig") is Verdict.BAD


SHOPS = {"acme-eu.myshopify.com": "eu-secret", "acme-us.myshopify.com": "us-secret"}


@pytest.mark.parametrize("default", [None, "any-shop-secret"])
def test_a_listed_shop_is_checked_with_its_own_secret_only(default: str | None) -> None:
    assert shopify_secret("acme-eu.myshopify.com", shops=SHOPS, default=default) == "eu-secret"


def test_an_unlisted_shop_falls_back_to_the_secret_for_every_shop() -> None:
    assert shopify_secret("other.myshopify.com", shops=SHOPS, default="all") == "all"
    assert shopify_secret(None, shops=SHOPS, default="all") == "all"


def test_an_unlisted_shop_has_no_secret_without_one_for_every_shop() -> None:
    assert shopify_secret("other.myshopify.com", shops=SHOPS, default=None) is None
    assert shopify_secret(None, shops=SHOPS, default=None) is None
