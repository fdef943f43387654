"""What delivering an action sends: the SMTP and HTTP set-up (`Delivery`), and the send step
of each kind of action (an email, a signed webhook, a task's notification), built inside the
transaction that checked the action."""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass

import httpx
from sqlalchemy.engine import Row
from sqlalchemy.orm import Session

from services.routing.domain import playbooks as pb
from services.routing.domain.config import RoutingConfig
from services.routing.domain.webhooks import unsubscribe_token
from services.routing.senders import (
    DeliveryError,
    SmtpConfig,
    render_email,
    send_email,
    send_webhook,
)
from services.scoring import public as scoring
from shared.config import Settings


@dataclass
class Delivery:
    """What delivering actions needs: SMTP, an HTTP client, and the signing secrets."""

    smtp: SmtpConfig | None
    http: httpx.Client
    webhook_secret: str | None
    secret_key: str
    public_url: str

    @classmethod
    def from_settings(cls, settings: Settings) -> Delivery:
        """Delivery set up from the settings (no SMTP when LEADFLOW_SMTP_HOST is unset)."""
        smtp = None
        if settings.smtp_host:
            smtp = SmtpConfig(
                host=settings.smtp_host,
                port=settings.smtp_port,
                username=settings.smtp_username,
                password=(
                    settings.smtp_password.get_secret_value() if settings.smtp_password else None
                ),
                sender=settings.smtp_from,
            )
        return cls(
            smtp=smtp,
            http=httpx.Client(timeout=10.0),
            webhook_secret=(
                settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
            ),
            secret_key=settings.secret_key.get_secret_value(),
            public_url=settings.public_url.rstrip("/"),
        )


def _prepare_task(
    session: Session, *, row: Row, state: pb.LeadState, delivery: Delivery, config: RoutingConfig
) -> Callable[[], None]:
    """A task's notification: an email to the owner or the team inbox (the team's `tasks_to`);
    nothing to send when it has no recipient or SMTP is not set up (the task is listed all
    the same)."""
    team = config.teams.get(row.team) if row.team else None
    recipient = team.task_recipient(row.member) if team is not None else None
    if recipient is None or delivery.smtp is None:
        return lambda: None
    smtp, payload = delivery.smtp, row.payload or {}
    lead = scoring.get_lead(session, lead_id=state.lead_id)
    email = render_email(
        template="task",
        context={
            "title": payload.get("title") or row.playbook,
            "playbook": row.playbook,
            "team": row.team,
            "member": row.member,
            "lead": {
                "id": state.lead_id,
                "email": state.email,
                "first_name": state.first_name,
                "last_name": lead.last_name if lead else None,
                "company": lead.company_name if lead else None,
                "score": lead.score if lead else None,
                "qualification": state.qualification,
                "funnel_stage": state.funnel_stage,
            },
            "lead_url": f"{delivery.public_url}/v1/leads/{state.lead_id}",
            "tasks_url": f"{delivery.public_url}/v1/teams/{row.team}/tasks",
        },
    )
    key = row.idempotency_key
    return lambda: send_email(
        config=smtp, to=recipient, email=email, message_id=key, unsubscribe_url=None
    )


def prepare(
    session: Session, *, row: Row, state: pb.LeadState, delivery: Delivery, config: RoutingConfig
) -> Callable[[], None]:
    """The send step for an action, built inside the transaction that checked it."""
    if row.kind == "task":
        return _prepare_task(session, row=row, state=state, delivery=delivery, config=config)
    if row.kind == "email":
        if delivery.smtp is None:
            raise DeliveryError("LEADFLOW_SMTP_HOST is not set", permanent=True)
        smtp = delivery.smtp
        token = unsubscribe_token(secret=delivery.secret_key, lead_id=state.lead_id)
        unsubscribe_url = f"{delivery.public_url}/v1/unsubscribe/{token}"
        payload = row.payload or {}
        carts = list((payload.get("carts") or {}).values())
        cart = carts[-1] if carts else {}
        email = render_email(
            template=payload.get("template", row.playbook),
            context={
                "lead": {"first_name": state.first_name, "email": state.email},
                "cart": cart,
                "carts": carts,
                "webinar": payload.get("webinar") or {},
                "unsubscribe_url": unsubscribe_url,
            },
        )
        to, key = state.email or "", row.idempotency_key
        return lambda: send_email(
            config=smtp, to=to, email=email, message_id=key, unsubscribe_url=unsubscribe_url
        )
    if row.kind == "webhook":
        if not delivery.webhook_secret:
            raise DeliveryError("LEADFLOW_WEBHOOK_SECRET is not set", permanent=True)
        secret, url = delivery.webhook_secret, (row.payload or {}).get("url")
        lead = scoring.get_lead(session, lead_id=state.lead_id)
        body = {
            "type": (row.payload or {}).get("event", row.playbook),
            "lead_id": state.lead_id,
            "email": state.email,
            "qualification": state.qualification,
            "funnel_stage": state.funnel_stage,
            "score": lead.score if lead else None,
            "owner": {"team": state.owner_team, "member": state.owner_member},
        }
        timestamp = int(time.time())

        def post() -> None:
            send_webhook(
                client=delivery.http,
                url=url,
                secret=secret,
                msg_id=row.idempotency_key,
                payload=body,
                timestamp=timestamp,
            )

        return post
    return lambda: None
