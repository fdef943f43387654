"""Standard Webhooks signatures, subscription secrets and their rotation, and signed
unsubscribe tokens."""

from __future__ import annotations

import base64
import hashlib
import hmac
from datetime import UTC, datetime, timedelta

import pytest

from services.routing.domain.webhooks import (
    ROTATION_GRACE,
    RetiredSecret,
    lead_of_unsubscribe_token,
    new_secret,
    rotate,
    sign,
    signing_secrets,
    unsubscribe_token,
    verify,
    webhook_headers,
)

# The published Standard Webhooks test vector (also used by the Svix libraries' tests).
SPEC_SECRET = "whsec_MfKQ9r8GKYqrTwjUPD8ILPZIo2LaLaSw"
SPEC_MSG_ID = "msg_p5jXN8AQM9LWM0D4loKWxJek"
SPEC_TIMESTAMP = 1614265330
SPEC_BODY = b'{"test": 2432232314}'
SPEC_SIGNATURE = "v1,g0hM9SsE+OTPJTGt/tmIKtSyZlE3uFJELVlNIOLJ1OE="

KEY = b"\x00\x01 a key with arbitrary bytes \xff"
SECRET = "whsec_" + base64.b64encode(KEY).decode()
MSG_ID = "msg_action-42"
NOW = 1_700_000_000
BODY = b'{"lead_id":"lead-1","action":"abandoned_cart"}'


def _expected(key: bytes, msg_id: str, timestamp: int, body: bytes) -> str:
    """The signature computed straight from the spec's definition."""
    mac = hmac.new(key, f"{msg_id}.{timestamp}.".encode() + body, hashlib.sha256).digest()
    return "v1," + base64.b64encode(mac).decode()


def test_signature_reproduces_the_standard_webhooks_test_vector() -> None:
    signature = sign(
        secret=SPEC_SECRET, msg_id=SPEC_MSG_ID, timestamp=SPEC_TIMESTAMP, body=SPEC_BODY
    )
    assert signature == SPEC_SIGNATURE


def test_prefixed_secret_signs_with_its_base64_decoded_key() -> None:
    signature = sign(secret=SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY)
    assert signature == _expected(KEY, MSG_ID, NOW, BODY)


def test_secret_without_prefix_signs_with_its_utf8_bytes() -> None:
    signature = sign(secret="plain-secret-é", msg_id=MSG_ID, timestamp=NOW, body=BODY)
    assert signature == _expected("plain-secret-é".encode(), MSG_ID, NOW, BODY)


def test_prefixed_secret_with_invalid_base64_is_refused() -> None:
    with pytest.raises(ValueError, match="base64"):
        sign(secret="whsec_not*base64!", msg_id=MSG_ID, timestamp=NOW, body=BODY)


def test_verify_accepts_the_standard_webhooks_test_vector() -> None:
    assert verify(
        secret=SPEC_SECRET,
        msg_id=SPEC_MSG_ID,
        timestamp=SPEC_TIMESTAMP,
        body=SPEC_BODY,
        header=SPEC_SIGNATURE,
        now=SPEC_TIMESTAMP + 10,
    )


def _verify(**overrides: object) -> bool:
    """verify() on a genuine signature of BODY, with some arguments replaced."""
    arguments: dict[str, object] = {
        "secret": SECRET,
        "msg_id": MSG_ID,
        "timestamp": NOW,
        "body": BODY,
        "header": sign(secret=SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY),
        "now": NOW,
    }
    arguments.update(overrides)
    return verify(**arguments)  # type: ignore[arg-type]


def test_verify_accepts_a_genuine_signature() -> None:
    assert _verify()


def test_verify_accepts_a_header_where_any_of_several_signatures_matches() -> None:
    genuine = sign(secret=SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY)
    rotated_out = sign(secret="whsec_b2xkLWtleQ==", msg_id=MSG_ID, timestamp=NOW, body=BODY)
    assert _verify(header=f"{rotated_out} v2,ignored {genuine}")


def test_verify_rejects_a_tampered_body() -> None:
    assert not _verify(body=BODY.replace(b"lead-1", b"lead-2"))


def test_verify_rejects_a_signature_made_with_another_secret() -> None:
    assert not _verify(secret="whsec_" + base64.b64encode(b"another key").decode())


def test_verify_rejects_a_changed_message_id() -> None:
    assert not _verify(msg_id="msg_other")


def test_verify_rejects_a_header_without_v1_signatures() -> None:
    digest = sign(secret=SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY).removeprefix("v1,")
    assert not _verify(header=f"v2,{digest}")
    assert not _verify(header="")


@pytest.mark.parametrize("age_s", [301, -301])
def test_verify_rejects_a_timestamp_outside_the_tolerance(age_s: int) -> None:
    assert not _verify(now=NOW + age_s)


def test_verify_accepts_a_timestamp_at_the_edge_of_the_tolerance() -> None:
    assert _verify(now=NOW + 300)
    assert _verify(now=NOW + 60, tolerance_s=60)


def test_headers_carry_id_timestamp_signature_and_json_content_type() -> None:
    headers = webhook_headers(secret=SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY)
    assert headers == {
        "webhook-id": MSG_ID,
        "webhook-timestamp": str(NOW),
        "webhook-signature": _expected(KEY, MSG_ID, NOW, BODY),
        "content-type": "application/json",
    }


UNSUBSCRIBE_SECRET = "unsubscribe-secret"


def test_unsubscribe_token_names_the_lead_and_a_url_safe_signature() -> None:
    token = unsubscribe_token(secret=UNSUBSCRIBE_SECRET, lead_id="lead-1")
    mac = hmac.new(UNSUBSCRIBE_SECRET.encode(), b"lead-1", hashlib.sha256).digest()
    assert token == "lead-1." + base64.urlsafe_b64encode(mac).decode()[:32]


@pytest.mark.parametrize("lead_id", ["lead-1", "0b7c6a52-1f3e-4c1a-9f7e-2d7f1c0e9a11", "a.b.c"])
def test_unsubscribe_token_round_trips_to_its_lead(lead_id: str) -> None:
    token = unsubscribe_token(secret=UNSUBSCRIBE_SECRET, lead_id=lead_id)
    assert lead_of_unsubscribe_token(secret=UNSUBSCRIBE_SECRET, token=token) == lead_id


def test_unsubscribe_token_with_a_tampered_signature_is_rejected() -> None:
    token = unsubscribe_token(secret=UNSUBSCRIBE_SECRET, lead_id="lead-1")
    tampered = token[:-1] + ("A" if token[-1] != "A" else "B")
    assert lead_of_unsubscribe_token(secret=UNSUBSCRIBE_SECRET, token=tampered) is None


def test_unsubscribe_token_of_one_lead_cannot_unsubscribe_another() -> None:
    token = unsubscribe_token(secret=UNSUBSCRIBE_SECRET, lead_id="lead-1")
    signature = token.rpartition(".")[2]
    forged = f"lead-2.{signature}"
    assert lead_of_unsubscribe_token(secret=UNSUBSCRIBE_SECRET, token=forged) is None


def test_unsubscribe_token_made_with_another_secret_is_rejected() -> None:
    token = unsubscribe_token(secret="another-secret", lead_id="lead-1")
    assert lead_of_unsubscribe_token(secret=UNSUBSCRIBE_SECRET, token=token) is None


@pytest.mark.parametrize("token", ["", "lead-1", ".signature", "lead-1."])
def test_malformed_unsubscribe_token_is_rejected(token: str) -> None:
    assert lead_of_unsubscribe_token(secret=UNSUBSCRIBE_SECRET, token=token) is None


# --- subscription secrets and their rotation --------------------------------------------------

ROTATED_AT = datetime(2026, 12, 7, 9, 0, tzinfo=UTC)


def test_a_new_secret_is_whsec_and_32_random_bytes_in_base64() -> None:
    secret = new_secret()
    assert secret.startswith("whsec_")
    assert len(base64.b64decode(secret.removeprefix("whsec_"), validate=True)) == 32
    assert new_secret() != secret


def test_headers_signed_by_several_secrets_carry_one_v1_signature_per_secret() -> None:
    other = new_secret()
    headers = webhook_headers(
        secret=SECRET, msg_id=MSG_ID, timestamp=NOW, body=BODY, also_signed_by=[other]
    )
    first, second = headers["webhook-signature"].split(" ")
    assert first == _expected(KEY, MSG_ID, NOW, BODY)
    assert second == sign(secret=other, msg_id=MSG_ID, timestamp=NOW, body=BODY)


def _receiver_accepts(
    secret: str, *, current: str, retired: list[RetiredSecret], at: datetime
) -> bool:
    """What a receiver holding `secret` says of a delivery signed at `at`."""
    key, also = signing_secrets(current=current, retired=retired, now=at)
    headers = webhook_headers(
        secret=key, msg_id=MSG_ID, timestamp=NOW, body=BODY, also_signed_by=also
    )
    return verify(
        secret=secret,
        msg_id=MSG_ID,
        timestamp=NOW,
        body=BODY,
        header=headers["webhook-signature"],
        now=NOW,
    )


def test_after_a_rotation_the_old_secret_verifies_during_the_grace_period_only() -> None:
    old = new_secret()
    new, retired = rotate(current=old, retired=[], now=ROTATED_AT, grace=ROTATION_GRACE)
    assert new != old
    assert timedelta(hours=24) == ROTATION_GRACE
    during = ROTATED_AT + timedelta(hours=23, minutes=59)
    after = ROTATED_AT + timedelta(hours=24)
    assert _receiver_accepts(old, current=new, retired=retired, at=during)
    assert _receiver_accepts(new, current=new, retired=retired, at=during)
    assert not _receiver_accepts(old, current=new, retired=retired, at=after)
    assert _receiver_accepts(new, current=new, retired=retired, at=after)


def test_a_rotation_without_grace_stops_the_old_secret_at_once() -> None:
    old = new_secret()
    new, retired = rotate(current=old, retired=[], now=ROTATED_AT, grace=timedelta(0))
    assert retired == []
    assert not _receiver_accepts(old, current=new, retired=retired, at=ROTATED_AT)


def test_a_second_rotation_keeps_both_older_secrets_until_each_expires_and_drops_expired() -> None:
    first = new_secret()
    second, retired = rotate(current=first, retired=[], now=ROTATED_AT, grace=ROTATION_GRACE)
    later = ROTATED_AT + timedelta(hours=1)
    third, retired = rotate(current=second, retired=retired, now=later, grace=ROTATION_GRACE)
    assert [r.secret for r in retired] == [first, second]
    key, also = signing_secrets(current=third, retired=retired, now=later)
    assert (key, also) == (third, [second, first])  # the newest first
    fourth, retired = rotate(
        current=third, retired=retired, now=ROTATED_AT + timedelta(hours=24), grace=ROTATION_GRACE
    )
    assert [r.secret for r in retired] == [second, third]
    assert fourth not in (first, second, third)
