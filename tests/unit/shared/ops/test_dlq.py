"""Dead-lettered records: their ids, and what the consumer loop wrote in their headers."""

from __future__ import annotations

import base64

import orjson
import pytest

from shared.ops.domain.dlq import (
    DLQ_HEADER_PREFIX,
    REPLAYED_FROM_HEADER,
    BadDlqId,
    DlqId,
    ParkedMessage,
)

SOURCE = "leadflow.touch-events"
DLQ_TOPIC = f"{SOURCE}.dlq"
PARKED_AT_MS = 1_717_171_717_171


def dlq_headers(
    *,
    original: list[tuple[str, bytes]] | None = None,
    error: str = "ValueError: score out of range",
    topic: str = SOURCE,
    partition: int = 2,
    offset: int = 41,
    group: str = "leadflow-scoring",
    at_ms: int | None = PARKED_AT_MS,
) -> list[tuple[str, bytes]]:
    """Headers as `shared.consumer.ConsumerLoop._dead_letter` writes them."""
    headers = [h for h in (original or []) if not h[0].startswith("leadflow.dlq.")] + [
        ("leadflow.dlq.error", error[:2000].encode()),
        ("leadflow.dlq.topic", topic.encode()),
        ("leadflow.dlq.partition", str(partition).encode()),
        ("leadflow.dlq.offset", str(offset).encode()),
        ("leadflow.dlq.group", group.encode()),
    ]
    if at_ms is not None:
        headers.append(("leadflow.dlq.at", str(at_ms).encode()))
    return headers


def parked(
    value: bytes = b'{"event_id": "evt-123", "type": "page_view"}',
    *,
    headers: list[tuple[str, bytes]] | None = None,
    key: bytes | None = b"acct-9",
    timestamp_ms: int | None = 1_700_000_000_000,
    id: DlqId | None = None,
) -> ParkedMessage:
    return ParkedMessage(
        id=id or DlqId(topic=DLQ_TOPIC, partition=0, offset=7),
        key=key,
        value=value,
        headers=headers if headers is not None else dlq_headers(),
        timestamp_ms=timestamp_ms,
    )


# --- DlqId ----------------------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "topic", "partition", "offset"),
    [
        ("leadflow.touch-events.dlq:0:7", "leadflow.touch-events.dlq", 0, 7),
        ("my-app.lead_changes-v2.dlq:12:123456789", "my-app.lead_changes-v2.dlq", 12, 123456789),
        ("t:3:0", "t", 3, 0),
    ],
)
def test_dlq_id_parses_topic_partition_and_offset(
    text: str, topic: str, partition: int, offset: int
) -> None:
    parsed = DlqId.parse(text)
    assert parsed == DlqId(topic=topic, partition=partition, offset=offset)
    assert str(parsed) == text


def test_dlq_id_round_trips_through_its_text() -> None:
    original = DlqId(topic="a.b-c.dlq", partition=5, offset=99)
    assert DlqId.parse(str(original)) == original


@pytest.mark.parametrize(
    ("text", "expected_message"),
    [
        ("x", "is not <dlq topic>:<partition>:<offset>"),
        ("t:1", "is not <dlq topic>:<partition>:<offset>"),
        (":1:2", "is not <dlq topic>:<partition>:<offset>"),
        ("", "is not <dlq topic>:<partition>:<offset>"),
        ("t:a:1", "partition and offset must be integers"),
        ("t:1:b", "partition and offset must be integers"),
        ("t::1", "partition and offset must be integers"),
        ("t:1_0:2", "partition and offset must be integers"),
        ("t: 1:+2", "partition and offset must be integers"),
        ("t:-1:-5", "partition and offset must be integers"),
    ],
)
def test_malformed_dlq_ids_are_refused_with_a_message_naming_the_text(
    text: str, expected_message: str
) -> None:
    with pytest.raises(BadDlqId) as caught:
        DlqId.parse(text)
    message = str(caught.value)
    assert expected_message in message
    assert repr(text) in message


def test_bad_dlq_id_is_a_value_error() -> None:
    with pytest.raises(ValueError):
        DlqId.parse("nonsense")


# --- headers, source topic, event id --------------------------------------------------------


def test_header_returns_the_text_of_the_named_header_or_none() -> None:
    message = parked(headers=dlq_headers(original=[("traceparent", b"00-abc-def-01")]))
    assert message.header("traceparent") == "00-abc-def-01"
    assert message.header("leadflow.dlq.group") == "leadflow-scoring"
    assert message.header("missing") is None


def test_header_with_invalid_utf8_is_decoded_with_replacement_characters() -> None:
    message = parked(headers=[("bin", b"ok\xff")])
    assert message.header("bin") == "ok\ufffd"


def test_source_topic_is_the_topic_the_record_was_consumed_from() -> None:
    assert parked(headers=dlq_headers(topic="leadflow.lead-changes")).source_topic == (
        "leadflow.lead-changes"
    )
    assert parked(headers=[]).source_topic is None


def test_event_id_is_read_from_a_json_object_value() -> None:
    assert parked(b'{"event_id": "evt-1", "x": 1}').event_id == "evt-1"


def test_a_numeric_event_id_is_returned_as_text() -> None:
    assert parked(b'{"event_id": 42}').event_id == "42"


@pytest.mark.parametrize(
    "value",
    [
        b"not json at all",
        b"\xff\xfe\x00binary",
        b"",
        b'{"no_event_id": 1}',
        b'["evt-1"]',
        b'"evt-1"',
        b'{"event_id": null}',
    ],
)
def test_event_id_is_none_without_a_json_object_holding_one(value: bytes) -> None:
    assert parked(value).event_id is None


# --- replay_headers -------------------------------------------------------------------------


def test_replay_headers_drop_the_dlq_headers_and_record_where_the_replay_came_from() -> None:
    original = [("traceparent", b"00-abc-def-01"), ("content-type", b"application/json")]
    message = parked(headers=dlq_headers(original=original))
    assert message.replay_headers() == [
        *original,
        (REPLAYED_FROM_HEADER, b"leadflow.touch-events.dlq:0:7"),
    ]


def test_replay_headers_drop_any_leadflow_dlq_header_even_unknown_ones() -> None:
    headers = [*dlq_headers(), ("leadflow.dlq.attempts", b"5"), ("leadflow.other", b"kept")]
    replayed = parked(headers=headers).replay_headers()
    assert not [k for k, _ in replayed if k.startswith(DLQ_HEADER_PREFIX)]
    assert ("leadflow.other", b"kept") in replayed


def test_replay_headers_replace_an_older_replayed_from_header() -> None:
    # Replayed once, failed again, parked again at a new offset: only the new origin remains.
    original = [(REPLAYED_FROM_HEADER, b"leadflow.touch-events.dlq:0:3"), ("x-keep", b"1")]
    message = parked(
        headers=dlq_headers(original=original),
        id=DlqId(topic=DLQ_TOPIC, partition=1, offset=12),
    )
    replayed = message.replay_headers()
    assert [v for k, v in replayed if k == REPLAYED_FROM_HEADER] == [
        b"leadflow.touch-events.dlq:1:12"
    ]
    assert ("x-keep", b"1") in replayed
    assert len(replayed) == 2


def test_replay_headers_do_not_change_the_parked_message() -> None:
    headers = dlq_headers()
    message = parked(headers=headers)
    message.replay_headers()
    assert message.headers == headers
    assert message.source_topic == SOURCE


# --- as_dict --------------------------------------------------------------------------------


def test_as_dict_describes_the_error_origin_and_json_value() -> None:
    value = {"event_id": "evt-123", "type": "page_view", "props": {"path": "/pricing"}}
    message = parked(
        orjson.dumps(value),
        headers=dlq_headers(error="KeyError: 'account'", partition=2, offset=41),
        id=DlqId(topic=DLQ_TOPIC, partition=1, offset=9),
    )
    data = message.as_dict(replayed_at="2024-06-01T12:00:00Z")
    assert data == {
        "id": "leadflow.touch-events.dlq:1:9",
        "dlq_topic": DLQ_TOPIC,
        "partition": 1,
        "offset": 9,
        "error": "KeyError: 'account'",
        "origin": {"topic": SOURCE, "partition": 2, "offset": 41, "group": "leadflow-scoring"},
        "parked_at_ms": PARKED_AT_MS,
        "event_id": "evt-123",
        "key": "acct-9",
        "value": value,
        "replayed_at": "2024-06-01T12:00:00Z",
    }


def test_as_dict_is_json_serialisable_and_not_yet_replayed_by_default() -> None:
    data = parked(b"\x00\x01\x02").as_dict()
    assert data["replayed_at"] is None
    assert orjson.loads(orjson.dumps(data)) == data


def test_as_dict_gives_a_non_json_value_as_base64() -> None:
    raw = b"\x00\xffnot-json"
    data = parked(raw).as_dict()
    assert data["value"] == {"base64": base64.b64encode(raw).decode()}
    assert base64.b64decode(data["value"]["base64"]) == raw
    assert data["event_id"] is None


def test_as_dict_origin_partition_and_offset_are_integers() -> None:
    data = parked(headers=dlq_headers(partition=11, offset=1_234_567)).as_dict()
    assert data["origin"]["partition"] == 11
    assert data["origin"]["offset"] == 1_234_567
    assert isinstance(data["origin"]["partition"], int)


def test_as_dict_origin_is_none_where_headers_are_missing_or_not_numbers() -> None:
    headers = [("leadflow.dlq.partition", b"two"), ("leadflow.dlq.offset", b"")]
    data = parked(headers=headers).as_dict()
    assert data["origin"] == {"topic": None, "partition": None, "offset": None, "group": None}
    assert data["error"] is None


def test_parked_at_comes_from_the_dlq_header_when_present() -> None:
    data = parked(headers=dlq_headers(at_ms=1_234), timestamp_ms=9_999).as_dict()
    assert data["parked_at_ms"] == 1_234


def test_parked_at_falls_back_to_the_record_timestamp_without_the_header() -> None:
    without_header = parked(headers=dlq_headers(at_ms=None), timestamp_ms=9_999)
    assert without_header.as_dict()["parked_at_ms"] == 9_999
    not_a_number = parked(headers=[("leadflow.dlq.at", b"later")], timestamp_ms=5)
    assert not_a_number.as_dict()["parked_at_ms"] == 5


def test_parked_at_is_none_without_header_or_timestamp() -> None:
    assert parked(headers=[], timestamp_ms=None).as_dict()["parked_at_ms"] is None


def test_as_dict_key_is_text_or_none() -> None:
    assert parked(key=None).as_dict()["key"] is None
    assert parked(key=b"acct-\xff").as_dict()["key"] == "acct-\ufffd"


def test_as_dict_gives_a_json_null_value_as_null_not_base64() -> None:
    assert parked(value=b"null").as_dict()["value"] is None


def test_parked_at_of_zero_in_the_header_is_kept() -> None:
    headers = [("leadflow.dlq.at", b"0")]
    assert parked(headers=headers, timestamp_ms=99).as_dict()["parked_at_ms"] == 0
