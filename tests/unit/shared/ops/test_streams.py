"""Stream health from offset samples: broker kind, lag, depth, rates and their series."""

from __future__ import annotations

from collections.abc import Mapping, Sequence

import pytest

from shared.ops.domain.streams import (
    BrokerInfo,
    Sample,
    broker_kind,
    lag,
    lag_series,
    newest_event_ms,
    partitions_of,
    rate_per_s,
    throughput_series,
    topic_depth,
    topic_lag,
)

TOPIC = "leadflow.touch-events"
OTHER = "leadflow.actions"
GROUP = "scoring"


def sample(
    at_ms: int,
    end: Mapping[tuple[str, int], int],
    *,
    beginning: Mapping[tuple[str, int], int] | None = None,
    committed: Mapping[tuple[str, str, int], int] | None = None,
    groups: Mapping[str, Sequence[str]] | None = None,
    error: str | None = None,
) -> Sample:
    return Sample(
        at_ms=at_ms,
        beginning=beginning or {},
        end=end,
        groups=groups if groups is not None else {GROUP: [TOPIC]},
        committed=committed or {},
        error=error,
    )


# --- BrokerInfo and broker_kind -------------------------------------------------------------


@pytest.mark.parametrize("cluster_id", ["tansu", "Tansu", "TANSU-cluster-1", "tansu_abc"])
def test_cluster_ids_starting_with_tansu_in_any_case_are_tansu(cluster_id: str) -> None:
    assert broker_kind(cluster_id) == "tansu"


@pytest.mark.parametrize("cluster_id", [None, "", "MkU3OEVBNTcwNTJENDM2Qk", "my-tansu", "kafka"])
def test_other_or_missing_cluster_ids_are_kafka(cluster_id: str | None) -> None:
    assert broker_kind(cluster_id) == "kafka"


def test_tansu_broker_end_offsets_are_not_exact_and_its_json_carries_the_caveat() -> None:
    info = BrokerInfo(
        bootstrap_servers="localhost:9092", cluster_id="tansu", kind="tansu", broker_ids=(3, 1)
    )
    assert info.end_offsets_exact is False
    data = info.as_dict()
    assert data["end_offsets_exact"] is False
    assert isinstance(data["note"], str) and "Tansu" in data["note"]
    assert data["broker_ids"] == [3, 1]
    assert data["bootstrap_servers"] == "localhost:9092"
    assert data["cluster_id"] == "tansu"
    assert data["kind"] == "tansu"


def test_kafka_broker_end_offsets_are_exact_and_its_json_has_no_note() -> None:
    info = BrokerInfo(bootstrap_servers="k:9092", cluster_id=None, kind="kafka")
    assert info.end_offsets_exact is True
    assert info.as_dict() == {
        "bootstrap_servers": "k:9092",
        "cluster_id": None,
        "kind": "kafka",
        "broker_ids": [],
        "end_offsets_exact": True,
        "note": None,
    }


# --- lag ------------------------------------------------------------------------------------


def test_lag_is_end_minus_committed_offset() -> None:
    s = sample(0, {(TOPIC, 0): 120}, beginning={(TOPIC, 0): 10}, committed={(GROUP, TOPIC, 0): 100})
    assert lag(s, group=GROUP, topic=TOPIC, partition=0) == 20


def test_lag_is_zero_when_the_group_is_caught_up() -> None:
    s = sample(0, {(TOPIC, 0): 50}, committed={(GROUP, TOPIC, 0): 50})
    assert lag(s, group=GROUP, topic=TOPIC, partition=0) == 0


def test_lag_of_a_group_without_committed_offset_counts_from_the_beginning() -> None:
    s = sample(0, {(TOPIC, 0): 120}, beginning={(TOPIC, 0): 30})
    assert lag(s, group=GROUP, topic=TOPIC, partition=0) == 90


def test_lag_of_a_group_without_committed_offset_and_no_beginning_is_the_whole_end() -> None:
    s = sample(0, {(TOPIC, 0): 7})
    assert lag(s, group=GROUP, topic=TOPIC, partition=0) == 7


def test_committed_offset_zero_is_used_rather_than_the_beginning() -> None:
    s = sample(0, {(TOPIC, 0): 40}, beginning={(TOPIC, 0): 25}, committed={(GROUP, TOPIC, 0): 0})
    assert lag(s, group=GROUP, topic=TOPIC, partition=0) == 40


def test_lag_is_zero_when_committed_is_past_the_under_reported_end() -> None:
    # Tansu reports the base offset of the newest batch + 1, so a group can commit beyond it.
    s = sample(0, {(TOPIC, 0): 101}, committed={(GROUP, TOPIC, 0): 150})
    assert lag(s, group=GROUP, topic=TOPIC, partition=0) == 0


def test_lag_is_none_for_a_partition_the_sample_does_not_know() -> None:
    s = sample(0, {(TOPIC, 0): 10}, committed={(GROUP, TOPIC, 5): 3})
    assert lag(s, group=GROUP, topic=TOPIC, partition=5) is None
    assert lag(s, group=GROUP, topic=OTHER, partition=0) is None


def test_lag_is_per_group_and_per_partition() -> None:
    s = sample(
        0,
        {(TOPIC, 0): 100, (TOPIC, 1): 60},
        committed={(GROUP, TOPIC, 0): 90, (GROUP, TOPIC, 1): 10, ("routing", TOPIC, 0): 40},
    )
    assert lag(s, group=GROUP, topic=TOPIC, partition=0) == 10
    assert lag(s, group=GROUP, topic=TOPIC, partition=1) == 50
    assert lag(s, group="routing", topic=TOPIC, partition=0) == 60
    # routing committed nothing on partition 1: the whole partition is behind.
    assert lag(s, group="routing", topic=TOPIC, partition=1) == 60


# --- topic_depth and partitions_of ----------------------------------------------------------


def test_topic_depth_adds_retained_records_over_the_topic_partitions_only() -> None:
    s = sample(
        0,
        {(TOPIC, 0): 100, (TOPIC, 1): 30, (OTHER, 0): 1_000},
        beginning={(TOPIC, 0): 40, (TOPIC, 1): 0, (OTHER, 0): 0},
    )
    assert topic_depth(s, topic=TOPIC) == 60 + 30


def test_topic_depth_never_counts_a_partition_negative() -> None:
    s = sample(0, {(TOPIC, 0): 5, (TOPIC, 1): 10}, beginning={(TOPIC, 0): 9, (TOPIC, 1): 4})
    assert topic_depth(s, topic=TOPIC) == 6


def test_topic_depth_of_an_unknown_topic_is_zero() -> None:
    assert topic_depth(sample(0, {(TOPIC, 0): 5}), topic="nope") == 0


def test_partitions_of_lists_the_topic_partitions_in_order() -> None:
    s = sample(0, {(TOPIC, 2): 1, (OTHER, 7): 1, (TOPIC, 0): 1, (TOPIC, 10): 1})
    assert partitions_of(s, TOPIC) == [0, 2, 10]
    assert partitions_of(s, OTHER) == [7]
    assert partitions_of(s, "nope") == []


# --- rate_per_s -----------------------------------------------------------------------------


def test_rate_is_none_for_an_empty_history() -> None:
    assert rate_per_s([], topic=TOPIC, window_ms=60_000) is None


def test_rate_is_none_for_a_single_sample() -> None:
    history = [sample(1_000, {(TOPIC, 0): 10})]
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) is None


def test_rate_is_none_when_the_readings_span_no_time() -> None:
    history = [sample(1_000, {(TOPIC, 0): 10}), sample(1_000, {(TOPIC, 0): 30})]
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) is None


def test_rate_is_records_appended_per_second_between_two_readings() -> None:
    history = [sample(0, {(TOPIC, 0): 100}), sample(4_000, {(TOPIC, 0): 120})]
    assert rate_per_s(history, topic=TOPIC, partition=0, window_ms=60_000) == pytest.approx(5.0)


def test_rate_of_the_whole_topic_adds_up_its_partitions() -> None:
    history = [
        sample(0, {(TOPIC, 0): 100, (TOPIC, 1): 50, (OTHER, 0): 0}),
        sample(2_000, {(TOPIC, 0): 110, (TOPIC, 1): 56, (OTHER, 0): 1_000}),
    ]
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) == pytest.approx(8.0)
    assert rate_per_s(history, topic=TOPIC, partition=1, window_ms=60_000) == pytest.approx(3.0)
    assert rate_per_s(history, topic=OTHER, window_ms=60_000) == pytest.approx(500.0)


def test_rate_ignores_samples_with_an_error() -> None:
    # A failed reading repeats the previous offsets; it must not count as a reading.
    history = [
        sample(0, {(TOPIC, 0): 0}),
        sample(1_000, {(TOPIC, 0): 10}),
        sample(2_000, {(TOPIC, 0): 10}, error="KafkaTimeoutError: timed out"),
    ]
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) == pytest.approx(10.0)


def test_rate_is_none_when_only_one_sample_has_no_error() -> None:
    history = [
        sample(0, {(TOPIC, 0): 0}, error="NoBrokersAvailable"),
        sample(1_000, {(TOPIC, 0): 10}),
        sample(2_000, {(TOPIC, 0): 20}, error="NoBrokersAvailable"),
    ]
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) is None


def test_rate_ignores_samples_that_read_no_offsets() -> None:
    history = [
        sample(0, {(TOPIC, 0): 0}),
        sample(1_000, {(TOPIC, 0): 10}),
        sample(2_000, {}),
    ]
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) == pytest.approx(10.0)


def test_rate_only_uses_samples_inside_the_window() -> None:
    history = [
        sample(0, {(TOPIC, 0): 0}),  # outside the window: a burst long ago
        sample(50_000, {(TOPIC, 0): 10_000}),
        sample(60_000, {(TOPIC, 0): 10_020}),
        sample(70_000, {(TOPIC, 0): 10_040}),
    ]
    # The window reaches back to 50 s: 40 records in 20 s.
    assert rate_per_s(history, topic=TOPIC, window_ms=20_000) == pytest.approx(2.0)
    # A window covering the whole history counts the burst too.
    assert rate_per_s(history, topic=TOPIC, window_ms=70_000) == pytest.approx(10_040 / 70)


def test_rate_uses_the_previous_reading_when_the_window_holds_only_the_newest() -> None:
    history = [
        sample(0, {(TOPIC, 0): 0}),
        sample(10_000, {(TOPIC, 0): 100}),
        sample(40_000, {(TOPIC, 0): 400}),
    ]
    assert rate_per_s(history, topic=TOPIC, window_ms=5_000) == pytest.approx(300 / 30)


def test_rate_counts_a_new_partition_from_its_beginning() -> None:
    history = [
        sample(0, {(TOPIC, 0): 100}),
        sample(
            2_000,
            {(TOPIC, 0): 104, (TOPIC, 1): 16},
            beginning={(TOPIC, 0): 0, (TOPIC, 1): 10},
        ),
    ]
    # Partition 0 appended 4, partition 1 (new) appended 16 - 10 = 6 since its beginning.
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) == pytest.approx(5.0)
    assert rate_per_s(history, topic=TOPIC, partition=1, window_ms=60_000) == pytest.approx(3.0)


def test_rate_is_never_negative_when_end_offsets_go_backwards() -> None:
    # Tansu under-reports end offsets, a recreated topic starts over: never a negative rate.
    history = [sample(0, {(TOPIC, 0): 500}), sample(1_000, {(TOPIC, 0): 3})]
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) == 0


def test_rate_of_an_idle_topic_is_zero() -> None:
    history = [sample(0, {(TOPIC, 0): 42}), sample(5_000, {(TOPIC, 0): 42})]
    assert rate_per_s(history, topic=TOPIC, window_ms=60_000) == 0


# --- throughput_series ----------------------------------------------------------------------


def test_throughput_series_is_empty_for_no_or_one_sample() -> None:
    assert throughput_series([], topic=TOPIC) == []
    assert throughput_series([sample(0, {(TOPIC, 0): 1})], topic=TOPIC) == []


def test_throughput_series_has_one_point_per_consecutive_pair_at_the_newer_time() -> None:
    history = [
        sample(1_000, {(TOPIC, 0): 0, (TOPIC, 1): 0}),
        sample(3_000, {(TOPIC, 0): 10, (TOPIC, 1): 10}),
        sample(7_000, {(TOPIC, 0): 12, (TOPIC, 1): 10}),
    ]
    assert throughput_series(history, topic=TOPIC) == [[3_000, 10.0], [7_000, 0.5]]


def test_throughput_series_skips_error_samples_and_pairs_at_the_same_time() -> None:
    history = [
        sample(0, {(TOPIC, 0): 0}),
        sample(0, {(TOPIC, 0): 5}),  # same time as the previous one: no point
        sample(1_000, {(TOPIC, 0): 5}, error="boom"),
        sample(2_000, {(TOPIC, 0): 25}),
    ]
    assert throughput_series(history, topic=TOPIC) == [[2_000, 10.0]]


def test_throughput_series_rounds_to_three_decimals_and_never_goes_negative() -> None:
    history = [
        sample(0, {(TOPIC, 0): 0}),
        sample(3_000, {(TOPIC, 0): 1}),
        sample(4_000, {(TOPIC, 0): 0}),
    ]
    assert throughput_series(history, topic=TOPIC) == [[3_000, 0.333], [4_000, 0]]


# --- lag_series -----------------------------------------------------------------------------


def test_lag_series_has_the_lag_at_each_reading_oldest_first() -> None:
    history = [
        sample(1_000, {(TOPIC, 0): 10}, committed={(GROUP, TOPIC, 0): 2}),
        sample(2_000, {(TOPIC, 0): 20}, committed={(GROUP, TOPIC, 0): 15}),
        sample(3_000, {(TOPIC, 0): 20}, committed={(GROUP, TOPIC, 0): 20}),
    ]
    assert lag_series(history, group=GROUP, topic=TOPIC, partition=0) == [
        [1_000, 8],
        [2_000, 5],
        [3_000, 0],
    ]


def test_lag_series_skips_error_samples_and_readings_without_the_partition() -> None:
    history = [
        sample(1_000, {(TOPIC, 0): 10}),
        sample(2_000, {(TOPIC, 0): 99}, error="boom"),
        sample(3_000, {(OTHER, 0): 10}),
        sample(4_000, {(TOPIC, 0): 12}, committed={(GROUP, TOPIC, 0): 11}),
    ]
    assert lag_series(history, group=GROUP, topic=TOPIC, partition=0) == [[1_000, 10], [4_000, 1]]


def test_lag_series_of_an_empty_history_is_empty() -> None:
    assert lag_series([], group=GROUP, topic=TOPIC, partition=0) == []


def test_topic_lag_adds_up_the_partitions_of_that_topic_only() -> None:
    sample = Sample(
        at_ms=0,
        beginning={("t", 0): 0, ("t", 1): 0, ("u", 0): 0},
        end={("t", 0): 5, ("t", 1): 3, ("u", 0): 9},
        groups={"g": ["t"]},
        committed={("g", "t", 0): 4, ("g", "t", 1): 7},
    )
    # 1 behind on partition 0; committed past the (under-reported) end on 1 counts as 0.
    assert topic_lag(sample, group="g", topic="t") == 1


def test_newest_event_is_the_latest_over_the_topics_partitions() -> None:
    sample = Sample(
        at_ms=0,
        beginning={},
        end={},
        groups={},
        committed={},
        last_event_ms={("t", 0): 100, ("t", 1): 250, ("u", 0): 999},
    )
    assert newest_event_ms(sample, topic="t") == 250
    assert newest_event_ms(sample, topic="none") is None
