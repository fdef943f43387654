"""What a clean stop waits for: the producer's acked offsets and each loop's committed ones."""

from __future__ import annotations

from types import SimpleNamespace

from shared.config import Settings
from shared.consumer import ConsumerLoop
from shared.kafka import AsyncProducer


class _NoProducer:
    """Stands in for kafka-python's producer; these tests never send."""


def producer() -> AsyncProducer:
    return AsyncProducer(settings=Settings(), producer=_NoProducer())  # type: ignore[arg-type]


def loop(*, topics: list[str], after_batch: bool = False) -> ConsumerLoop:
    return ConsumerLoop(
        settings=Settings(),
        topics=topics,
        group_id="g",
        handler=lambda record: None,
        dlq=producer(),
        after_batch=(lambda: None) if after_batch else None,
    )


def ack(topic: str, partition: int, offset: int) -> SimpleNamespace:
    """What kafka-python hands an ack callback (RecordMetadata's fields used here)."""
    return SimpleNamespace(topic=topic, partition=partition, offset=offset)


def test_acked_offsets_keep_the_offset_after_the_newest_record_of_each_partition():
    p = producer()
    for metadata in (ack("t", 0, 4), ack("t", 0, 2), ack("t", 1, 0), ack("u", 0, 9)):
        p._note_ack(metadata)
    assert p.acked_offsets() == {("t", 0): 5, ("t", 1): 1, ("u", 0): 10}


def test_an_ack_without_an_offset_is_not_counted():
    p = producer()
    p._note_ack(ack("t", 0, -1))
    p._note_ack(None)
    assert p.acked_offsets() == {}


def test_a_loop_is_caught_up_only_once_it_committed_past_every_published_record():
    consumer = loop(topics=["t"])
    published = {("t", 0): 5, ("t", 1): 1}
    assert not consumer.caught_up_with(published)
    consumer._committed[("t", 0)] = 5
    assert not consumer.caught_up_with(published), "partition 1 is still behind"
    consumer._committed[("t", 1)] = 1
    assert consumer.caught_up_with(published)
    assert not consumer.caught_up_with({("t", 0): 6})


def test_records_of_topics_the_loop_does_not_read_do_not_hold_it_back():
    consumer = loop(topics=["t"])
    assert consumer.caught_up_with({("other", 0): 100, ("t.dlq", 0): 3})


def test_a_loop_whose_after_batch_work_is_pending_is_not_caught_up():
    consumer = loop(topics=["t"], after_batch=True)
    assert consumer.after_batch_pending  # runs once at start, before any poll
    assert not consumer.caught_up_with({})
    consumer._run_after_batch()
    assert consumer.caught_up_with({})
