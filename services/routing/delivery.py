"""Routing's action delivery: claim due actions, check each against the lead, send it once,
and record the outcome; an unreachable SMTP server or webhook receiver is waited out."""

from __future__ import annotations

import logging
import random
import time
from collections.abc import Callable, Sequence
from datetime import datetime, timedelta
from typing import Any
from urllib.parse import urlsplit

from sqlalchemy.engine import Row
from sqlalchemy.orm import Session, sessionmaker

from services.routing import repository as repo
from services.routing import webhooks as lead_webhooks
from services.routing.domain import playbooks as pb
from services.routing.domain.actions import ActionStatus
from services.routing.domain.config import RoutingConfig
from services.routing.domain.lead_events import ACTION_KIND as LEAD_WEBHOOK
from services.routing.domain.rules import RoutingDecision
from services.routing.send_steps import Delivery, prepare
from services.routing.senders import DeliveryError
from services.routing.service import as_action, assign, lead_state, store_action, touches_of
from shared.config import Settings
from shared.db import as_utc, transaction
from shared.faults import Dependency, Fault, Outage, classify

log = logging.getLogger(__name__)


def _backoff(attempts: int, *, base_s: float) -> float:
    # Exponential with full jitter, so many failing actions do not retry in lockstep.
    return random.uniform(0, base_s * 2 ** max(0, attempts - 1)) + base_s / 2


def recover_stale_claims(session: Session, *, settings: Settings, now: datetime) -> int:
    """Settle actions whose worker died. One claimed but not yet being sent goes back to the
    schedule. One that was being sent: an email is marked `uncertain` and never resent (SMTP
    has no idempotency key, so it may or may not have gone out); a webhook is scheduled again
    and goes out with the same webhook-id, which receivers deduplicate."""
    stale = repo.stale_claims(
        session, before=now - timedelta(seconds=settings.actions_claim_timeout_s)
    )
    for row in stale:
        if row.status == ActionStatus.SENDING and row.kind == "email":
            values = {
                "status": ActionStatus.UNCERTAIN,
                "last_error": "the worker stopped after claiming this email and before "
                "recording it; it may have gone out, so it is not resent",
            }
        elif row.status == ActionStatus.SENDING and row.kind == "task":
            # The task stands either way; its notification email is not sent twice.
            values = {
                "status": ActionStatus.OPEN,
                "last_error": "the worker stopped while emailing this task; the notification "
                "may not have gone out",
            }
        else:
            values = {"status": ActionStatus.SCHEDULED, "claimed_by": None, "claimed_at": None}
        repo.update_action(session, action_id=row.id, values={**values, "updated_at": now})
    return len(stale)


class DeliveryOutages:
    """One outage tracker per destination: the SMTP server, and each webhook receiver's host.

    While one is down, its actions are put back on the schedule for when it is next tried,
    without counting an attempt, and without each waiting out its own connect timeout."""

    def __init__(self, *, settings: Settings, registry: list[Outage]) -> None:
        self._settings = settings
        self._registry = registry  # what /readyz and /metrics read
        self._by_destination: dict[str, Outage] = {}

    def of(self, row: Row) -> Outage | None:
        """The tracker of the destination `row` is sent to (a task's notification goes by
        SMTP); None for SLA checks."""
        if row.kind in ("email", "task"):
            destination = "smtp"
        elif row.kind in ("webhook", LEAD_WEBHOOK):
            url = str((row.payload or {}).get("url") or "")
            destination = f"webhook {urlsplit(url).netloc or url}"
        else:
            return None
        outage = self._by_destination.get(destination)
        if outage is None:
            outage = Outage.from_settings(
                worker=f"action delivery ({destination})", settings=self._settings
            )
            self._by_destination[destination] = outage
            self._registry.append(outage)
        return outage


def deliver_due(
    *,
    sessions: sessionmaker[Session],
    settings: Settings,
    config: RoutingConfig,
    delivery: Delivery,
    outages: DeliveryOutages,
    worker: str,
    now: Callable[[], datetime],
) -> int:
    """Claim the due actions and deliver each: check, send, record; returns how many.

    A database outage ends the pass (raised, for the caller to wait out); what this worker
    claimed and did not reach is taken up again by its next pass."""
    with transaction(sessions) as session:
        recover_stale_claims(session, settings=settings, now=now())
    with transaction(sessions) as session:
        claimed = repo.claimed_by(session, worker=worker) + repo.claim_due(
            session, now=now(), worker=worker, limit=settings.actions_batch_size
        )
    waiting: list[Row] = []
    for row in claimed:
        outage = outages.of(row)
        if outage is not None and not outage.due():
            waiting.append(row)
            continue
        deliver = _deliver_lead_webhook if row.kind == LEAD_WEBHOOK else _deliver_one
        try:
            deliver(
                sessions=sessions,
                action_id=row.id,
                settings=settings,
                config=config,
                delivery=delivery,
                outage=outage,
                now=now,
            )
        except Exception as exc:
            if classify(exc).fault is Fault.OUTAGE:
                raise
            log.exception(
                "action %s could not be delivered; it stays claimed",
                row.id,
                extra={"action_id": row.id},
            )
    _put_back(sessions=sessions, rows=waiting, outages=outages, now=now())
    return len(claimed)


def _put_back(
    *, sessions: sessionmaker[Session], rows: Sequence[Row], outages: DeliveryOutages, now: datetime
) -> None:
    """Schedule actions whose destination is down for its next try, attempts unchanged."""
    if not rows:
        return
    with transaction(sessions) as session:
        for row in rows:
            outage = outages.of(row)
            wait = outage.seconds_to_retry() if outage is not None else 0.0
            _reschedule(session, row=row, wait_s=wait, now=now)


def _deliver_one(
    *,
    sessions: sessionmaker[Session],
    action_id: str,
    settings: Settings,
    config: RoutingConfig,
    delivery: Delivery,
    outage: Outage | None,
    now: Callable[[], datetime],
) -> None:
    with transaction(sessions) as session:
        row = repo.get_action(session, action_id=action_id)
        if row is None or row.status != ActionStatus.CLAIMED:
            return
        if row.claimed_by is None:
            return
        if row.kind == "sla":
            _check_sla(session, row=row, config=config, now=now())
            return
        state = lead_state(session, lead_id=row.lead_id)
        if state is None:
            repo.update_action(
                session,
                action_id=action_id,
                values={
                    "status": ActionStatus.CANCELLED,
                    "cancel_reason": "the lead no longer exists",
                    "updated_at": now(),
                },
            )
            return
        verdict = pb.check_due(
            action=as_action(row),
            lead=state,
            orders=touches_of(session, lead_id=row.lead_id, types={pb.ORDER_TYPE}),
            activations=touches_of(session, lead_id=row.lead_id, types={"trial_activated"}),
            last_marketing_sent_at=as_utc(
                repo.last_marketing_sent_at(session, lead_id=row.lead_id)
            ),
            config=config.playbooks,
            marketing=row.marketing,
            now=now(),
        )
        if verdict.decision == "cancel":
            repo.update_action(
                session,
                action_id=action_id,
                values={
                    "status": ActionStatus.CANCELLED,
                    "cancel_reason": verdict.reason[:200],
                    "updated_at": now(),
                },
            )
            return
        if verdict.decision == "defer":
            repo.update_action(
                session,
                action_id=action_id,
                values={
                    "status": ActionStatus.SCHEDULED,
                    "due_at": verdict.until,
                    "deferrals": row.deferrals + 1,
                    "claimed_by": None,
                    "claimed_at": None,
                    "updated_at": now(),
                },
            )
            return
        try:
            send = prepare(session, row=row, state=state, delivery=delivery, config=config)
        except DeliveryError as exc:
            send_error: DeliveryError | None = exc
        else:
            send_error = None
            # Committed before the send: after a crash this row says "may have gone out".
            repo.update_action(
                session,
                action_id=action_id,
                values={"status": ActionStatus.SENDING, "updated_at": now()},
            )
    if send_error is None:
        try:
            send()
        except DeliveryError as exc:
            send_error = exc
    with transaction(sessions) as session:
        if send_error is not None and send_error.outage and outage is not None:
            dependency = Dependency.SMTP if row.kind == "email" else Dependency.WEBHOOK
            wait = outage.failed(send_error, dependency, where=f"action {row.id}")
            _reschedule(session, row=row, wait_s=wait, now=now(), error=send_error)
            return
        if send_error is not None:
            _record_failure(session, row=row, error=send_error, settings=settings, now=now())
            return
        if outage is not None:
            outage.recovered()
        done = ActionStatus.OPEN if row.kind == "task" else ActionStatus.SENT
        repo.update_action(
            session,
            action_id=action_id,
            values={
                "status": done,
                "sent_at": now(),
                "attempts": row.attempts + 1,
                "last_error": None,
                "updated_at": now(),
            },
        )
        reminder = config.playbooks.abandoned_cart.second_reminder_after_s
        if row.playbook == pb.ABANDONED_CART and reminder:
            store_action(
                session,
                lead_id=row.lead_id,
                action=pb.NewAction(
                    kind="email",
                    playbook=pb.CART_REMINDER,
                    idempotency_key=f"{pb.CART_REMINDER}:{row.idempotency_key}",
                    due_at=now() + timedelta(seconds=reminder),
                    payload={**(row.payload or {}), "template": pb.CART_REMINDER},
                    marketing=True,
                ),
                team=row.team,
                member=row.member,
                now=now(),
            )


def _deliver_lead_webhook(
    *,
    sessions: sessionmaker[Session],
    action_id: str,
    settings: Settings,
    config: RoutingConfig,
    delivery: Delivery,
    outage: Outage | None,
    now: Callable[[], datetime],
) -> None:
    """Send one lead event to one subscription, signed as the subscription is now, and log
    the attempt; the same retry policy as every action (an unreachable receiver is waited
    out without counting an attempt)."""
    with transaction(sessions) as session:
        row = repo.get_action(session, action_id=action_id)
        if row is None or row.status != ActionStatus.CLAIMED or row.claimed_by is None:
            return
        send = lead_webhooks.prepare_send(session, row=row, http=delivery.http, now=now())
        if isinstance(send, str):
            values = {"status": ActionStatus.CANCELLED, "cancel_reason": send, "updated_at": now()}
            repo.update_action(session, action_id=action_id, values=values)
            return
        # Committed before the send: after a crash it is sent again with the same webhook-id.
        repo.update_action(
            session,
            action_id=action_id,
            values={"status": ActionStatus.SENDING, "updated_at": now()},
        )
    started_at, started = now(), time.monotonic()
    status: int | None = None
    error: DeliveryError | None = None
    try:
        status = send()
    except DeliveryError as exc:
        error = exc
    took = time.monotonic() - started
    with transaction(sessions) as session:

        def record(outcome: str) -> None:
            lead_webhooks.log_attempt(
                session,
                row=row,
                at=started_at,
                duration_s=took,
                status=status,
                error=error,
                outcome=outcome,
            )

        if error is not None and error.outage and outage is not None:
            wait = outage.failed(error, Dependency.WEBHOOK, where=f"action {row.id}")
            _reschedule(session, row=row, wait_s=wait, now=now(), error=error)
            record(lead_webhooks.UNREACHABLE)
            return
        if error is not None:
            final = error.permanent or row.attempts + 1 >= settings.actions_max_attempts
            _record_failure(session, row=row, error=error, settings=settings, now=now())
            record(lead_webhooks.FAILED if final else lead_webhooks.RETRYING)
            return
        if outage is not None:
            outage.recovered()
        values = {
            "status": ActionStatus.SENT,
            "sent_at": now(),
            "attempts": row.attempts + 1,
            "last_error": None,
            "updated_at": now(),
        }
        repo.update_action(session, action_id=action_id, values=values)
        record(lead_webhooks.DELIVERED)


def _reschedule(
    session: Session, *, row: Row, wait_s: float, now: datetime, error: DeliveryError | None = None
) -> None:
    """The destination is down: try again in `wait_s`, when it is next tried; not an attempt."""
    values: dict[str, Any] = {
        "status": ActionStatus.SCHEDULED,
        "due_at": now + timedelta(seconds=wait_s),
        "claimed_by": None,
        "claimed_at": None,
        "updated_at": now,
    }
    if error is not None:
        values["last_error"] = str(error)[:1000]
    repo.update_action(session, action_id=row.id, values=values)


def _record_failure(
    session: Session, *, row: Row, error: DeliveryError, settings: Settings, now: datetime
) -> None:
    attempts = row.attempts + 1
    if error.permanent or attempts >= settings.actions_max_attempts:
        values: dict[str, Any] = {"status": ActionStatus.FAILED}
        log.warning(
            "action %s (%s) failed for good: %s",
            row.id,
            row.playbook,
            error,
            extra={"action_id": row.id, "lead_id": row.lead_id},
        )
    else:
        retry = _backoff(attempts, base_s=settings.actions_retry_base_s)
        values = {
            "status": ActionStatus.SCHEDULED,
            "due_at": now + timedelta(seconds=retry),
            "claimed_by": None,
            "claimed_at": None,
        }
    repo.update_action(
        session,
        action_id=row.id,
        values={**values, "attempts": attempts, "last_error": str(error)[:1000], "updated_at": now},
    )


def _check_sla(session: Session, *, row: Row, config: RoutingConfig, now: datetime) -> None:
    """At the SLA deadline: a lead not contacted yet is a breach, escalated as configured."""
    assignment = repo.get_assignment(session, assignment_id=int(row.payload["assignment_id"]))
    done = {"status": ActionStatus.SENT, "sent_at": now, "updated_at": now}
    if assignment is None or not assignment.current or assignment.contacted_at is not None:
        repo.update_action(session, action_id=row.id, values={**done, "cancel_reason": "met"})
        return
    repo.update_assignment(session, assignment_id=assignment.id, values={"sla_breached_at": now})
    team = config.team(assignment.team)
    log.warning(
        "SLA breached: lead %s in team %s",
        assignment.lead_id,
        assignment.team,
        extra={"lead_id": assignment.lead_id, "action_id": row.id},
    )
    if team.escalation == "reassign" and team.members:
        assign(
            session,
            lead_id=assignment.lead_id,
            decision=RoutingDecision(team=assignment.team, rule=f"sla_breach:{assignment.rule}"),
            config=config,
            qualification=assignment.qualification,
            funnel_stage=assignment.funnel_stage,
            cause_event_id=row.idempotency_key,
            now=now,
            exclude=[assignment.member] if assignment.member else [],
        )
    else:
        store_action(
            session,
            lead_id=assignment.lead_id,
            action=pb.NewAction(
                kind="task",
                playbook="sla_breach",
                idempotency_key=f"sla_breach:{assignment.id}",
                due_at=now,
                payload={
                    "title": f"SLA breached: not contacted within {row.payload['sla_s']:.0f} s"
                },
            ),
            team=assignment.team,
            member=assignment.member,
            now=now,
        )
    repo.update_action(session, action_id=row.id, values={**done, "cancel_reason": "breached"})


# --- feedback, teams, actions ----------------------------------------------------------------
