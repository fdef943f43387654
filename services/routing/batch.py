"""Routing's lead-change handler, a poll batch at a time.

The batch is the unit of work: its event ids are deduplicated in one statement, everything its
leads and teams need is loaded in a few set-based queries, the changes are decided in memory in
offset order (so two changes of one lead behave exactly as if handled one after the other, and
round-robin moves on from one assignment to the next), and the decisions are written back in a
few bulk statements. One change is a batch of one: there is a single implementation.
"""

from __future__ import annotations

import dataclasses
from collections.abc import Sequence
from dataclasses import dataclass, field
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing import bulk
from services.routing.domain import lead_events as le
from services.routing.domain import playbooks as pb
from services.routing.domain.actions import ActionStatus
from services.routing.domain.config import RoutingConfig, TeamConfig
from services.routing.domain.facts import facts_of
from services.routing.domain.rules import (
    LeadFacts,
    RoutingDecision,
    imported_owner,
    pick_member,
    route,
    sla_seconds,
)
from services.routing.domain.triggers import CART_TYPES
from services.routing.service import CONSUMER, as_action, new_action_row
from services.routing.webhooks import planning_subscriptions
from services.scoring import public as scoring
from shared.db import as_utc, mark_processed_many
from shared.events import LeadChange

# The playbooks whose past actions `pb.plan_change` reads: the only history the batch loads in
# full (the payloads of every other action would cost more to read than all the rest). Whether
# any other action's idempotency key is stored already is asked of the keys the batch plans.
HISTORY_PLAYBOOKS = (pb.ABANDONED_CART, pb.CART_REMINDER, pb.TRIAL_NUDGE)


class ActionConflict(RuntimeError):
    """A planned action's idempotency key was stored by a concurrent transaction meanwhile; the
    batch is undone and handled again (by then the stored action is seen)."""


@dataclass(frozen=True)
class Owner:
    """Who owns a lead at a point of the batch."""

    team: str
    member: str | None


@dataclass
class Snapshot:
    """What the batch read before deciding: rows by lead, and the state of the teams it may
    assign to. Never changed by planning, so a plan can be made again from it."""

    rows: dict[str, Row]
    owners: dict[str, Owner]
    suppressed: set[str]
    actions: dict[str, list[Row]]
    orders: dict[str, list[Row]]  # and cart touches
    loads: dict[str, dict[str, int]]
    away: dict[str, set[str]]
    last: dict[str, str | None]
    # The enabled outbound webhook subscriptions: each gets the lead events it wants.
    subscriptions: list[le.Subscription] = field(default_factory=list)


@dataclass
class _Lead:
    owner: Owner | None
    suppressed: bool
    history: list[pb.Action]
    orders: list[pb.Touch]
    carts: list[pb.Touch]


@dataclass
class Writes:
    """The batch's decisions as rows to write."""

    suppress: list[dict[str, Any]] = field(default_factory=list)
    assignments: list[dict[str, Any]] = field(default_factory=list)
    # (index into assignments, the SLA action's row without its assignment id and key)
    sla: list[tuple[int, dict[str, Any]]] = field(default_factory=list)
    actions: dict[str, dict[str, Any]] = field(default_factory=dict)  # by idempotency key
    updates: dict[str, dict[str, Any]] = field(default_factory=dict)  # by stored action id
    last_assigned: dict[str, str] = field(default_factory=dict)


def touch_of(change: LeadChange) -> pb.Touch | None:
    """The touch behind a change, as playbooks see it."""
    raw = change.touch
    if not raw:
        return None
    return pb.Touch(
        raw["event_id"],
        raw["type"],
        datetime.fromisoformat(raw["occurred_at"]),
        raw.get("properties") or {},
        source=raw.get("source"),
    )


def _moves(change: LeadChange) -> tuple[Any, Any]:
    return change.changes.qualification, change.changes.funnel


def _teams_assigning(
    changes: Sequence[LeadChange],
    decisions: Sequence[RoutingDecision],
    owners: dict[str, Owner],
    config: RoutingConfig,
) -> list[str]:
    """The teams with members that the batch will give a lead to: where a change's team is not
    the team the lead has by then (which depends on teams alone, not on members)."""
    teams: dict[str, str] = {lead: owner.team for lead, owner in owners.items()}
    assigning: set[str] = set()
    for change, decision in zip(changes, decisions, strict=True):
        if teams.get(change.lead_id) != decision.team:
            teams[change.lead_id] = decision.team
            if config.team(decision.team).members:
                assigning.add(decision.team)
    return sorted(assigning)


def load(
    session: Session,
    *,
    changes: Sequence[LeadChange],
    decisions: Sequence[RoutingDecision],
    config: RoutingConfig,
    now: datetime,
) -> Snapshot:
    """Everything the batch's leads and teams need, in a few set-based queries."""
    lead_ids = sorted({c.lead_id for c in changes})
    stored = bulk.current_owners(session, lead_ids=lead_ids)
    owners = {lead: Owner(row.team, row.member) for lead, row in stored.items()}
    teams = _teams_assigning(changes, decisions, owners, config)
    return Snapshot(
        rows=scoring.lead_rows(session, lead_ids=lead_ids),
        owners=owners,
        suppressed=bulk.suppressed_among(session, lead_ids=lead_ids),
        actions=bulk.actions_of_leads(session, lead_ids=lead_ids, playbooks=HISTORY_PLAYBOOKS),
        orders=scoring.touches_of_leads(
            session, lead_ids=lead_ids, types=[pb.ORDER_TYPE, *sorted(CART_TYPES)]
        ),
        loads=bulk.member_loads(session, teams=teams) if teams else {},
        away=bulk.away_of_teams(session, teams=teams, now=now) if teams else {},
        last=bulk.last_assigned_of_teams(session, teams=teams) if teams else {},
        subscriptions=planning_subscriptions(session),
    )


class _Planner:
    """Decides a batch's changes in memory, in order, from a snapshot."""

    def __init__(
        self, snapshot: Snapshot, *, config: RoutingConfig, now: datetime, taken: set[str]
    ) -> None:
        self.snapshot, self.config, self.now = snapshot, config, now
        self.writes = Writes()
        self.loads = {team: dict(counts) for team, counts in snapshot.loads.items()}
        self.last = dict(snapshot.last)
        self.leads: dict[str, _Lead] = {}
        # Keys an insert would find stored: the loaded history, the other stored keys found so
        # far (`taken`), and what the batch planned so far.
        self.keys = set(taken)
        for rows in snapshot.actions.values():
            self.keys.update(r.idempotency_key for r in rows)
        self.current_index: dict[str, int] = {}  # lead -> its newest assignment in writes
        self._teams: dict[str, TeamConfig] = {}

    def team(self, name: str) -> TeamConfig:
        """A team's config (RoutingConfig.team builds the default anew on every call)."""
        if name not in self._teams:
            self._teams[name] = self.config.team(name)
        return self._teams[name]

    def lead(self, lead_id: str) -> _Lead:
        """The batch's working view of a lead."""
        if lead_id not in self.leads:
            s = self.snapshot
            past = [
                pb.Touch(
                    r.event_id,
                    r.type,
                    as_utc(r.occurred_at),  # type: ignore[arg-type]
                    r.properties or {},
                    source=r.source,
                )
                for r in s.orders.get(lead_id, [])
            ]
            self.leads[lead_id] = _Lead(
                owner=s.owners.get(lead_id),
                suppressed=lead_id in s.suppressed,
                history=[as_action(r) for r in s.actions.get(lead_id, [])],
                orders=[t for t in past if t.type == pb.ORDER_TYPE],
                carts=[t for t in past if t.type in CART_TYPES],
            )
        return self.leads[lead_id]

    def handle(self, change: LeadChange, decision: RoutingDecision) -> None:
        """Everything one change calls for, as the per-record handler always did it."""
        lead = self.lead(change.lead_id)
        touch = touch_of(change)
        if touch is not None and touch.type == "unsubscribe" and not lead.suppressed:
            lead.suppressed = True
            self.writes.suppress.append(
                {"lead_id": change.lead_id, "reason": "unsubscribe event", "at": self.now}
            )
        previous = lead.owner
        if lead.owner is None or lead.owner.team != decision.team:
            lead.owner = self.assign(change, decision, previous=lead.owner)
        row = self.snapshot.rows.get(change.lead_id)
        if row is None:  # merged away since; the surviving lead's change will plan for it
            return
        if self.snapshot.subscriptions:
            self.lead_events(change, decision, lead, previous)
        state = pb.LeadState(
            lead_id=change.lead_id,
            email=row.email,
            first_name=row.first_name,
            qualification=row.qualification,
            funnel_stage=row.funnel_stage,
            owner_team=lead.owner.team,
            owner_member=lead.owner.member,
            unsubscribed=lead.suppressed,
        )
        quality_move, funnel_move = _moves(change)
        plan = pb.plan_change(
            change=pb.Change(change.event_id, state, touch, quality_move, funnel_move),
            history=lead.history,
            orders=lead.orders,
            config=self.config.playbooks,
            team=self.team(lead.owner.team),
            now=self.now,
            cart_touches=lead.carts,
        )
        for new in plan.schedule:
            self.schedule(change.lead_id, lead, new)
        for action_id, reason in plan.cancel:
            values = {
                "status": ActionStatus.CANCELLED,
                "cancel_reason": reason[:200],
                "updated_at": self.now,
            }
            self.update(lead, action_id, values)
        for action_id, due_at, payload in plan.update:
            self.update(
                lead, action_id, {"due_at": due_at, "payload": payload, "updated_at": self.now}
            )

    def lead_events(
        self, change: LeadChange, decision: RoutingDecision, lead: _Lead, previous: Owner | None
    ) -> None:
        """Plan a delivery of each lead event the change is (and `lead.owner_assigned` when it
        gave the lead a new owner) to each subscription that wants it."""
        assert lead.owner is not None
        owner = le.Owner(lead.owner.team, lead.owner.member)
        events = le.events_of_change(change, owner=owner)
        if lead.owner != previous:
            events.append(
                le.owner_assigned(
                    lead=change.lead,
                    owner=owner,
                    previous=le.Owner(previous.team, previous.member) if previous else None,
                    rule=decision.rule,
                    cause_event_id=change.cause_event_id,
                    at=change.occurred_at,
                )
            )
        for action in le.deliveries(
            events,
            subscriptions=self.snapshot.subscriptions,
            source_id=change.event_id,
            now=self.now,
        ):
            self.schedule(change.lead_id, lead, action)

    def assign(
        self, change: LeadChange, decision: RoutingDecision, previous: Owner | None
    ) -> Owner:
        """Round-robin to an available member under capacity (else the team queue), with the
        SLA clock started; the team state moves on in memory."""
        team = self.team(decision.team)
        member = decision.member
        if member is not None:  # the decision names the owner (an imported lead's CRM owner)
            loads = self.loads.setdefault(decision.team, {})
            loads[member] = loads.get(member, 0) + 1
        elif team.members:
            loads = self.loads[decision.team]
            member = pick_member(
                members=team.members,
                open_counts=loads,
                away=self.snapshot.away[decision.team],
                last_assigned=self.last.get(decision.team),
            )
            if member is not None:
                self.last[decision.team] = member
                self.writes.last_assigned[decision.team] = member
                loads[member] = loads.get(member, 0) + 1
        if previous is not None and previous.member is not None and previous.team in self.loads:
            before = self.loads[previous.team]
            before[previous.member] = before.get(previous.member, 0) - 1
        qualification, funnel_stage = change.lead.qualification, change.lead.funnel_stage
        sla = sla_seconds(
            team, qualification=qualification or "unqualified", funnel_stage=funnel_stage
        )
        sla_due = self.now + timedelta(seconds=sla) if sla else None
        rows = self.writes.assignments
        if change.lead_id in self.current_index:  # a second new owner within the batch
            rows[self.current_index[change.lead_id]]["current"] = False
        self.current_index[change.lead_id] = len(rows)
        rows.append(
            {
                "lead_id": change.lead_id,
                "team": decision.team,
                "member": member,
                "rule": decision.rule,
                "funnel_stage": funnel_stage,
                "qualification": qualification,
                "cause_event_id": change.event_id,
                "assigned_at": self.now,
                "current": True,
                "sla_due_at": sla_due,
                "contacted_at": None,
                "sla_breached_at": None,
            }
        )
        if sla_due is not None:
            # The key and payload need the assignment's id, known once it is stored. Playbooks
            # never look at SLA actions, so the lead's history does not need it now.
            action = pb.NewAction(
                kind="sla",
                playbook="sla",
                idempotency_key="",
                due_at=sla_due,
                payload={"sla_s": sla},
            )
            values = self.action_row(change.lead_id, action, Owner(decision.team, member))
            self.writes.sla.append((len(rows) - 1, values))
        return Owner(decision.team, member)

    def action_row(self, lead_id: str, action: pb.NewAction, owner: Owner) -> dict[str, Any]:
        """The row of a new action."""
        return new_action_row(
            lead_id=lead_id, action=action, team=owner.team, member=owner.member, now=self.now
        )

    def schedule(self, lead_id: str, lead: _Lead, action: pb.NewAction) -> None:
        """Plan a new action unless its idempotency key is stored or planned already."""
        if action.idempotency_key in self.keys:
            return
        assert lead.owner is not None
        values = self.action_row(lead_id, action, lead.owner)
        self.keys.add(action.idempotency_key)
        self.writes.actions[action.idempotency_key] = values
        lead.history.append(
            pb.Action(
                id=values["id"],
                kind=action.kind,
                playbook=action.playbook,
                idempotency_key=action.idempotency_key,
                status=ActionStatus.SCHEDULED,
                due_at=action.due_at,
                payload=action.payload,
            )
        )

    def update(self, lead: _Lead, action_id: str, values: dict[str, Any]) -> None:
        """Change an action of the lead: in its history, and in the row to write."""
        for i, action in enumerate(lead.history):
            if action.id == action_id:
                known = {k: v for k, v in values.items() if k in ("status", "due_at", "payload")}
                lead.history[i] = dataclasses.replace(action, **known)
                new = self.writes.actions.get(action.idempotency_key)
                if new is not None and new["id"] == action_id:
                    new.update(values)  # planned in this batch: written as it ends up
                    return
                break
        self.writes.updates.setdefault(action_id, {}).update(values)


def plan(
    snapshot: Snapshot,
    *,
    changes: Sequence[LeadChange],
    decisions: Sequence[RoutingDecision],
    config: RoutingConfig,
    now: datetime,
    taken: set[str],
) -> Writes:
    """The writes the changes call for, decided in memory in their order."""
    planner = _Planner(snapshot, config=config, now=now, taken=taken)
    for change, decision in zip(changes, decisions, strict=True):
        planner.handle(change, decision)
    return planner.writes


def write(session: Session, writes: Writes) -> None:
    """Store a batch's decisions in a few bulk statements."""
    bulk.suppress_many(session, rows=writes.suppress)
    ids = bulk.replace_assignments(session, rows=writes.assignments)
    bulk.set_last_assigned_many(session, last=writes.last_assigned)
    rows = list(writes.actions.values())
    for index, values in writes.sla:
        assignment = writes.assignments[index]
        assignment_id = ids[(assignment["lead_id"], assignment["cause_event_id"])]
        values["idempotency_key"] = f"sla:{assignment_id}"
        values["payload"] = {"assignment_id": assignment_id, **values["payload"]}
        rows.append(values)
    stored = bulk.insert_actions(session, rows=rows)
    if len(stored) != len(rows):
        missing = sorted({r["idempotency_key"] for r in rows} - stored)
        raise ActionConflict(f"actions stored meanwhile by another transaction: {missing}")
    bulk.update_actions(session, changes=writes.updates)


def _imported_owner_of(change: LeadChange, config: RoutingConfig) -> RoutingDecision | None:
    """For a touch of a CRM import naming the lead's owner there: the decision keeping the lead
    with that member, when the routing file has them."""
    touch = change.touch or {}
    owner = (touch.get("properties") or {}).get("owner")
    if not str(touch.get("source", "")).endswith("_import") or not isinstance(owner, str):
        return None
    return imported_owner(owner, config)


def handle_changes(
    session: Session, *, changes: Sequence[LeadChange], config: RoutingConfig, now: datetime
) -> list[RoutingDecision | None]:
    """Route a batch of lead changes in offset order, as if one after the other: give each lead
    to the team owning its step and plan its follow-ups. One decision per change, None for a
    duplicate (handled before, or earlier in the batch)."""
    new = mark_processed_many(
        session, consumer=CONSUMER, event_ids=[c.event_id for c in changes], at=now
    )
    todo: list[LeadChange] = []
    results: list[RoutingDecision | None] = []
    decided: dict[LeadFacts, RoutingDecision] = {}  # the rules are pure: same facts, same team
    for change in changes:
        if change.event_id not in new:
            results.append(None)
            continue
        new.discard(change.event_id)  # a repeat later in the batch is a duplicate
        facts = facts_of(change.lead)
        try:
            decision = decided.get(facts) or decided.setdefault(facts, route(facts, config))
        except TypeError:  # a fact of a type that cannot be a key: routed without the memo
            decision = route(facts, config)
        decision = _imported_owner_of(change, config) or decision
        results.append(decision)
        todo.append(change)
    if not todo:
        return results
    decisions = [d for d in results if d is not None]
    snapshot = load(session, changes=todo, decisions=decisions, config=config, now=now)
    taken: set[str] = set()
    while True:
        writes = plan(
            snapshot, changes=todo, decisions=decisions, config=config, now=now, taken=taken
        )
        # A planned key that is stored already (an action the batch did not load) is skipped,
        # as inserting it one by one would be; planning again without it keeps the leads'
        # histories within the batch exact. Rare: it takes a change planned twice.
        elsewhere = bulk.existing_action_keys(session, keys=writes.actions) - taken
        if not elsewhere:
            break
        taken |= elsewhere
    write(session, writes)
    return results


def handle_lead_change(
    session: Session, *, change: LeadChange, config: RoutingConfig, now: datetime
) -> RoutingDecision | None:
    """Give the lead to the team owning its step and plan its follow-ups; None for a duplicate."""
    return handle_changes(session, changes=[change], config=config, now=now)[0]
