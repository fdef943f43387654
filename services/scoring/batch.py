"""Scoring a poll batch as one unit of work.

`score_touches` takes a batch of touch envelopes: one statement marks them processed (the
repeats and the already seen drop out), a few set-based reads load every lead, identity and
folded state the batch needs, each touch is decided in memory in batch order (so in order per
lead), and the results are written back with multi-row statements, one outbox insert included.
The caller commits once. An in-order touch is folded into the lead's stored state
(`domain/folding.py`); a late touch, a lead without a usable state, and the survivor of a merge
are replayed from their whole history, which gives the same result.

The account roll-up runs once per batch per account that changed, after the leads are
written, so every lead change of a batch carries its account role as of the batch's end.
A merge is the one step that needs the database to be current: the pending writes are flushed
before it.
"""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import Any

from sqlalchemy.orm import Session

from services.routing import public as routing_public
from services.scoring import bulk
from services.scoring import privacy_repository as privacy_repo
from services.scoring import repository as repo
from services.scoring.accounts_rollup import refresh_accounts, remember_bant
from services.scoring.batch_state import (
    LeadInBatch,
    PendingChange,
    consent_rows,
    identities_of_touch,
    lead_change_of,
    new_lead_row,
    stage_value,
)
from services.scoring.domain import accounts as committee
from services.scoring.domain import folding, identity
from services.scoring.domain.model import Touch
from services.scoring.domain.model_set import ModelSet
from services.scoring.domain.qualification import in_history_order
from services.scoring.domain.scoring_model import ScoringModel
from services.scoring.shapes import (
    bant_json,
    persona_of,
    persona_values,
    stage_row,
    touch_of,
)
from shared import outbox
from shared.config import Settings
from shared.db import insert_many
from shared.events import LeadChange, TouchEnvelope

CONSUMER = "scoring"


class Batch:
    """The in-memory unit of work for touches (and re-scores) of many leads."""

    def __init__(
        self, session: Session, *, settings: Settings, models: ModelSet, now: datetime
    ) -> None:
        self.session, self.settings, self.models, self.now = session, settings, models, now
        self.owners: dict[tuple[str, str], str] = {}
        self.leads: dict[str, LeadInBatch] = {}
        self.changes: list[LeadChange] = []
        self._waiting: list[PendingChange] = []
        self._new_identities: list[dict[str, Any]] = []
        self._touch_rows: list[dict[str, Any]] = []
        self._consent_rows: list[dict[str, Any]] = []
        self._qualification_rows: list[dict[str, Any]] = []
        # Merges refused (two people tied by a shared id): pairs seen, and rows to store.
        self._refusals: set[tuple[str, str]] = set()
        self._refusal_rows: list[dict[str, Any]] = []
        self._domains: set[str] = set()

    # --- loading -------------------------------------------------------------------------

    def load_for(self, envelopes: list[TouchEnvelope]) -> None:
        """Read the identities, leads and states these touches need, in a few queries."""
        pairs = [pair for e in envelopes for pair in identities_of_touch(e)]
        missing = [p for p in dict.fromkeys(pairs) if p not in self.owners]
        self.owners.update(bulk.owners_of(self.session, identities=missing))
        self.load_leads([self.owners[p] for p in pairs if p in self.owners])

    def load_leads(self, lead_ids: list[str]) -> None:
        """Read the rows, identities and folded states of leads not loaded yet."""
        wanted = [i for i in dict.fromkeys(lead_ids) if i not in self.leads]
        if not wanted:
            return
        rows = bulk.leads_by_id(self.session, lead_ids=wanted)
        found = list(rows)
        identities = bulk.identities_by_lead(self.session, lead_ids=found)
        states = bulk.states_of(self.session, lead_ids=found)
        without = [i for i in found if i not in states]
        qualified = bulk.last_qualified_at(self.session, lead_ids=without) if without else {}
        for lead_id in found:
            stored = states.get(lead_id)
            self.leads[lead_id] = LeadInBatch(
                row={**rows[lead_id]._mapping, "bant": None},  # re-derived before a write
                identities=identities[lead_id],
                state=(
                    folding.from_json(
                        stored.state, model=self.models.for_lead(persona_of(rows[lead_id]))
                    )
                    if stored
                    else None
                ),
                qualified_at=stored.qualified_at if stored else qualified.get(lead_id),
                pending_after=stored.pending_after if stored else None,
            )
            for pair in identities[lead_id]:
                self.owners[pair] = lead_id

    # --- deciding --------------------------------------------------------------------------

    def touch(self, envelope: TouchEnvelope) -> None:
        """Store a (new) touch and fold it into its lead, queueing the lead change."""
        lead_id, extra = self._resolve(envelope)
        touch = Touch(
            event_id=envelope.event_id,
            type=envelope.type,
            occurred_at=envelope.occurred_at,
            source=envelope.source,
            properties=envelope.properties,
        )
        self._touch_rows.append(
            {
                "event_id": envelope.event_id,
                "lead_id": lead_id,
                "type": envelope.type,
                "source": envelope.source,
                "occurred_at": envelope.occurred_at,
                "received_at": envelope.received_at,
                "properties": envelope.properties,
            }
        )
        self._consent_rows += consent_rows(lead_id=lead_id, envelope=envelope)
        lead = self.leads[lead_id]
        lead.unsaved.append(touch)
        persona = persona_values(envelope, row=lead.row)
        model = self._model_of(lead, persona=persona)
        if lead.state is None or lead.state.is_late(touch):
            self._replay(lead_id, model=model)
        elif lead.state.model_version != model.version:
            self._replay(lead_id, model=model)  # its facts now make it another model's lead
        else:
            lead.moves += folding.fold(lead.state, model=model, touch=touch)
        self._record(
            lead_id,
            persona=persona,
            cause_event_id=envelope.event_id,
            cause_at=envelope.occurred_at,
            extra=extra,
            touch={
                "event_id": envelope.event_id,
                "type": envelope.type,
                "source": envelope.source,
                "occurred_at": envelope.occurred_at.isoformat(),
                "properties": envelope.properties,
            },
        )

    def rescore(self, lead_id: str) -> bool:
        """Re-assess a quiet lead at `now`; queue a lead change if its score, qualification or
        a stage moved (routing rules and `min_score` filters read the stored score). True if
        it moved."""
        self.load_leads([lead_id])
        lead = self.leads.get(lead_id)
        if lead is None:
            return False
        model = self._model_of(lead, persona={})
        if lead.state is None or lead.state.model_version != model.version:
            self._replay(lead_id, model=model)
        assert lead.state is not None
        assessment = folding.settle(
            lead.state, model=model, persona=persona_of(lead.row), now=self.now
        ).assessment
        row = lead.row
        if (
            row["score"] == assessment.score
            and row["fit_score"] == assessment.fit
            and row["engagement_score"] == assessment.engagement
            and row["persona"] == assessment.persona
            and row["qualification"] == assessment.qualification.value
            and row["funnel_stage"] == stage_value(assessment.funnel_stage)
            and row["journey_stage"] == stage_value(assessment.journey_stage)
        ):
            return False
        cause = f"rescore:{lead_id}:{self.now.isoformat()}"
        self._record(
            lead_id,
            persona={},
            cause_event_id=cause,
            cause_at=self.now,
            extra={"rescored": True},
            touch=None,
        )
        return True

    def _model_of(self, lead: LeadInBatch, *, persona: dict[str, Any]) -> ScoringModel:
        """The model that scores the lead, given its row and the facts a touch adds."""
        return self.models.for_lead(persona_of({**lead.row, **persona}))

    def _replay(self, lead_id: str, *, model: ScoringModel) -> None:
        lead = self.leads[lead_id]
        stored = [] if lead.new else repo.touches_of(self.session, lead_id=lead_id)
        history = [touch_of(r) for r in stored] + lead.unsaved
        lead.state, lead.moves = folding.replay(model=model, touches=history)
        lead.rewrite = True

    def _record(
        self,
        lead_id: str,
        *,
        persona: dict[str, Any],
        cause_event_id: str,
        cause_at: datetime,
        extra: dict[str, Any],
        touch: dict[str, Any] | None,
    ) -> None:
        """Settle the lead's state at `now`, update its row and queue its lead change."""
        lead = self.leads[lead_id]
        assert lead.state is not None
        before = lead.row
        merged = {**before, **persona}
        model = self.models.for_lead(persona_of(merged))
        if lead.state.model_version != model.version:
            self._replay(lead_id, model=model)
            assert lead.state is not None
        settled = folding.settle(lead.state, model=model, persona=persona_of(merged), now=self.now)
        assessment = settled.assessment
        lead.tail = settled.pending
        new_funnel = stage_value(assessment.funnel_stage)
        new_journey = stage_value(assessment.journey_stage)
        moved: dict[str, Any] = {}
        if before["funnel_stage"] != new_funnel:
            moved["funnel"] = [before["funnel_stage"], new_funnel]
        if before["journey_stage"] != new_journey:
            moved["journey"] = [before["journey_stage"], new_journey]
        caused = [
            {"track": m.track, "from": m.from_stage, "to": m.to_stage, "rule": m.rule}
            for m in in_history_order(lead.moves)
            if m.cause_event_id == cause_event_id
        ]
        if caused:
            moved["transitions"] = caused
        if before["qualification"] != assessment.qualification.value:
            previous = lead.qualified_at
            self._qualification_rows.append(
                {
                    "lead_id": lead_id,
                    "track": "qualification",
                    "from_stage": before["qualification"],
                    "to_stage": assessment.qualification.value,
                    "at": cause_at,
                    "cause_event_id": cause_event_id,
                    "rule": assessment.qualification_reason[:100],
                    "seconds_in_previous": (
                        (cause_at - previous).total_seconds() if previous else None
                    ),
                }
            )
            lead.qualified_at = max(previous, cause_at) if previous else cause_at
            moved["qualification"] = [before["qualification"], assessment.qualification.value]
        domain = committee.account_domain(
            email=merged.get("email"), company_domain=merged.get("company_domain")
        )
        self._domains.update({domain, before.get("account_domain")} - {None})  # type: ignore[arg-type]
        newest = lead.state.newest
        lead.row = {
            **merged,
            "score": assessment.score,
            "fit_score": assessment.fit,
            "engagement_score": assessment.engagement,
            "persona": assessment.persona,
            "qualification": assessment.qualification.value,
            "funnel_stage": new_funnel,
            "journey_stage": new_journey,
            "bant": bant_json(assessment),
            "model_version": assessment.model_version,
            "qualification_reason": assessment.qualification_reason[:500],
            "account_domain": domain,
            "last_touch_at": newest.at if newest else None,
            "updated_at": self.now,
            "scored_at": self.now,
        }
        lead.bant, lead.dirty = assessment.bant, True
        self._waiting.append(
            PendingChange(
                lead_id=lead_id,
                cause_event_id=cause_event_id,
                occurred_at=cause_at,
                changes={"score_delta": assessment.score - before["score"], **moved, **extra},
                values=dict(lead.row),
                touch=touch,
            )
        )

    # --- identity ----------------------------------------------------------------------------

    def _resolve(self, envelope: TouchEnvelope) -> tuple[str, dict[str, Any]]:
        """The lead a touch belongs to, stitching anonymous and platform ids to the person; and
        what that took (`created`, `merged_from`) for the lead change. Which lead, which merge
        and which refusal is `domain.identity.resolve`'s decision."""
        email = envelope.lead.email
        others = [p for p in identities_of_touch(envelope) if p[0] != "email"]
        by_email = self.owners.get(("email", email)) if email else None
        found = {p: self.owners[p] for p in others if p in self.owners}
        candidates = [c for c in dict.fromkeys(found.values()) if c in self.leads]
        touch = identity.Person(email, frozenset(v for k, v in others if k == "user_id"))
        decided = identity.resolve(
            touch=touch,
            by_email=self._known(by_email) if by_email in self.leads else None,
            candidates=[self._known(c) for c in candidates],
        )
        target, merging = decided.target, list(decided.merge)
        created = False
        if merging:
            self.flush()  # a merge moves stored rows: store what is pending first
        if target is None:
            target, created = self._new_lead(email=email), True
        elif email and by_email is None:
            self._add_identity(target, ("email", email))
            self.leads[target].row["email"] = email
        merged_from = None
        for other in merging:
            self._merge(into=target, other=other, envelope=envelope)
            merged_from = other
        for pair in others:
            if pair not in found:
                self._add_identity(target, pair)
        for other, reason in decided.refused:
            self._refuse_merge(into=target, other=other, reason=reason, envelope=envelope)
        extra = {**({"created": True} if created else {})}
        if merged_from:
            extra["merged_from"] = merged_from
        return target, extra

    def _known(self, lead_id: str) -> identity.Known:
        lead = self.leads[lead_id]
        users = frozenset(v for k, v in lead.identities if k == "user_id")
        return identity.Known(lead_id, identity.Person(lead.row["email"], users))

    def _refuse_merge(self, *, into: str, other: str, reason: str, envelope: TouchEnvelope) -> None:
        """Keep, once per pair of leads, that a touch tied them and they were left apart."""
        if (into, other) in self._refusals:
            return
        self._refusals.add((into, other))
        shared = [
            {"kind": k, "value": v}
            for k, v in identities_of_touch(envelope)
            if k != "email" and self.owners.get((k, v)) == other
        ]
        self._refusal_rows.append(
            {
                "into_lead_id": into,
                "from_lead_id": other,
                "cause_event_id": envelope.event_id,
                "identities": shared,
                "refused": reason[:200],
                "at": self.now,
            }
        )

    def _new_lead(self, *, email: str | None) -> str:
        lead_id = str(uuid.uuid4())
        row = new_lead_row(lead_id=lead_id, email=email, columns=repo.leads.columns, now=self.now)
        model = self.models.for_lead(persona_of(row))
        self.leads[lead_id] = LeadInBatch(
            row=row,
            identities=[],
            new=True,
            state=folding.LeadState(model_version=model.version),
        )
        if email:
            self._add_identity(lead_id, ("email", email))
        return lead_id

    def _add_identity(self, lead_id: str, pair: tuple[str, str]) -> None:
        self.owners[pair] = lead_id
        self.leads[lead_id].identities.append(pair)
        self._new_identities.append(
            {"kind": pair[0], "value": pair[1], "lead_id": lead_id, "created_at": self.now}
        )

    def _merge(self, *, into: str, other: str, envelope: TouchEnvelope) -> None:
        """Move an email-less lead's identities and history into `into` (stored rows: the
        batch was flushed), record the merge, and replay the survivor on its next fold."""
        moved = repo.move_lead_history(self.session, from_lead_id=other, into_lead_id=into)
        privacy_repo.move_consents(self.session, from_lead_id=other, into_lead_id=into)
        routing_public.reassign_lead(self.session, from_lead_id=other, into_lead_id=into)
        repo.record_merge(
            self.session,
            into_lead_id=into,
            from_lead_id=other,
            cause_event_id=envelope.event_id,
            identities=[{"kind": r.kind, "value": r.value} for r in moved],
            at=self.now,
        )
        repo.delete_lead(self.session, lead_id=other)
        gone = self.leads.pop(other)
        survivor = self.leads[into]
        for pair in gone.identities:
            self.owners[pair] = into
            survivor.identities.append(pair)
        if gone.row.get("account_domain"):
            self._domains.add(gone.row["account_domain"])
        survivor.state = None  # its history now holds the other's touches

    # --- writing -----------------------------------------------------------------------------

    def flush(self) -> None:
        """Write everything decided so far, roll up the accounts that changed, and queue the
        lead changes in the outbox."""
        session = self.session
        dirty = [(i, lead) for i, lead in self.leads.items() if lead.dirty]
        insert_many(session, repo.leads, [lead.row for _, lead in dirty if lead.new])
        bulk.update_leads(session, rows=[lead.row for _, lead in dirty if not lead.new])
        insert_many(session, repo.lead_identities, self._new_identities)
        insert_many(session, repo.touches, self._touch_rows)
        privacy_repo.save_consents(session, rows=self._consent_rows)
        if self._refusal_rows:
            insert_many(
                session,
                repo.lead_merges,
                repo.unrecorded_refusals(session, rows=self._refusal_rows),
            )
            self._refusal_rows = []
        bulk.delete_stage_moves(
            session,
            whole=[i for i, lead in dirty if lead.rewrite and not lead.new],
            after={
                i: lead.pending_after
                for i, lead in dirty
                if not lead.rewrite and lead.pending_after is not None
            },
        )
        stage_rows = [
            stage_row(lead_id, m)
            for lead_id, lead in dirty
            for m in in_history_order([*lead.moves, *lead.tail])
        ]
        stage_rows += self._qualification_rows
        insert_many(session, repo.stage_history, stage_rows)
        bulk.save_states(
            session,
            rows=[
                {
                    "lead_id": lead_id,
                    "state": folding.to_json(lead.state),
                    "qualified_at": lead.qualified_at,
                    "pending_after": (
                        lead.state.newest.at if lead.tail and lead.state.newest else None
                    ),
                    "updated_at": self.now,
                }
                for lead_id, lead in dirty
                if lead.state is not None
            ],
        )
        for lead_id, lead in dirty:
            if lead.bant is not None:
                remember_bant(lead_id=lead_id, updated_at=self.now, bant=lead.bant)
        accounts = refresh_accounts(
            session,
            domains=sorted(self._domains),
            model=self.models.for_accounts(),
            now=self.now,
        )
        changes = [lead_change_of(c, accounts=accounts) for c in self._waiting]
        outbox.enqueue_many(
            session,
            messages=[
                (
                    self.settings.topic_lead_changes,
                    c.lead_id.encode(),
                    c.to_bytes(),
                    [("event_id", c.event_id.encode())],
                )
                for c in changes
            ],
        )
        self.changes += changes
        for _, lead in dirty:
            lead.pending_after = (
                lead.state.newest.at if lead.tail and lead.state and lead.state.newest else None
            )
            lead.new = lead.rewrite = lead.dirty = False
            lead.moves, lead.unsaved = [], []
        self._waiting, self._new_identities, self._touch_rows = [], [], []
        self._consent_rows = []
        self._qualification_rows, self._domains = [], set()
