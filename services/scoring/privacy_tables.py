"""Scoring's privacy tables: each lead's consent per purpose; the hashes of erased identities
and the record of each erasure (no personal data in either)."""

from __future__ import annotations

from sqlalchemy import JSON, Boolean, Column, ForeignKey, String, Table

from shared.db import TZDateTime, metadata

# One row per identity ever erased: only its hash, and when. A touch that was received before
# that time and names the identity belongs to the erased person and is dropped.
erased_identities = Table(
    "erased_identities",
    metadata,
    Column("hash", String(64), primary_key=True),
    Column("erased_at", TZDateTime, nullable=False),
)

# The record of each erasure (who asked, when, how many rows went), with no personal data.
erasures = Table(
    "erasures",
    metadata,
    Column("id", String(36), primary_key=True),
    Column("lead_id", String(36), nullable=False, index=True),
    Column("requested_by", String(100), nullable=False),
    Column("reason", String(200)),
    Column("removed", JSON, nullable=False),
    Column("at", TZDateTime, nullable=False),
)

# What each lead agreed to, per purpose: the newest statement wins (by when it was made), with
# where it came from. Marketing email reads it (routing, through scoring's public module).
lead_consents = Table(
    "lead_consents",
    metadata,
    Column("lead_id", String(36), ForeignKey("leads.id", ondelete="CASCADE"), primary_key=True),
    Column("purpose", String(64), primary_key=True),
    Column("granted", Boolean, nullable=False),
    Column("source", String(64), nullable=False),
    Column("event_id", String(200), nullable=False),
    Column("at", TZDateTime, nullable=False),
)
