"""What the operations routes answer, as the OpenAPI documents it: the stream report, the
dashboard's overview, a page of the dead-letter queues, a replay's report and the follow-up
check. They type each answer's stable top level and leave the per-topic, per-partition and
per-lead details JSON objects (their fields depend on the topic's kind and the broker). The
models change nothing in the JSON."""

from __future__ import annotations

from typing import Any

from pydantic import BaseModel, Field

from shared.pages import Timestamp


class Streams(BaseModel):
    """Each topic and partition: offsets, groups' lag, rates, DLQ depth; and the broker."""

    sampled_at: Timestamp | None
    sample_error: str | None
    broker: dict[str, Any]
    topics: list[dict[str, Any]] = Field(
        description="topic, kind (main or dlq), events_per_s_1m, last_event_at, groups, "
        "partitions; a DLQ also source_topic and replayed; each dlq_depth"
    )


class Overview(BaseModel):
    """What the /ops dashboard draws."""

    generated_at: Timestamp | None
    window_s: float
    sample_interval_s: float
    broker: dict[str, Any]
    sample_error: str | None
    throughput: list[dict[str, Any]] = Field(description="per main topic: its points over time")
    lag: list[dict[str, Any]] = Field(description="per group, topic and partition: its points")
    dlq: list[dict[str, Any]] = Field(description="per DLQ: source topic, depth, replayed")
    actions: list[dict[str, Any]] = Field(description="kind, status and count")
    sla_breaches: list[dict[str, Any]] = Field(description="team and count")
    leads: list[dict[str, Any]] = Field(description="qualification and count")


class DlqPage(BaseModel):
    """A page of dead-lettered messages: error, origin, value and replay of each."""

    items: list[dict[str, Any]]
    next_cursor: str | None


class ReplayReport(BaseModel):
    """What a replay re-published, and what it skipped and why."""

    replayed: int
    ids: list[str]
    skipped: list[dict[str, str]]


class Followups(BaseModel):
    """Leads that acted and got no next step in time, and each touch type's coverage."""

    days: int
    default_window_s: float
    unanswered: list[dict[str, Any]]
    unanswered_total: int
    coverage: list[dict[str, Any]]
    unanswered_types: list[str]
