"""The emergency send, as the console walks it: a template, an audience, a text, a
confirmation. Kept apart from the screens so it is tested without them."""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass, replace
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import col

from console.composing.composer import fill_template, template_values
from console.context import Context
from console.sending.campaigns import (
    Audience,
    CampaignRequest,
    Enqueued,
    Preview,
    create_campaign,
    message_text,
    preview_campaign,
)
from storage.engine import read_session
from storage.models import Contact

# What {zone} says when the alert goes to every resident.
EVERYWHERE = "toute la commune"


@dataclass(frozen=True)
class AlertDraft:
    template: str = ""  # the template's label; "" for a free text
    everyone: bool = True
    zones: tuple[str, ...] = ()
    text: str = ""
    sender_id: str = ""

    def audience(self) -> Audience:
        return Audience(everyone=True) if self.everyone else Audience(zones=self.zones)


def alert_topic(ctx: Context) -> str:
    return ctx.config.alert.topic


def templates(ctx: Context) -> dict[str, str]:
    return dict(ctx.config.topics[alert_topic(ctx)].templates)


def zone_counts(ctx: Context) -> list[tuple[str, int]]:
    """Every zone with its residents, for choosing where the alert goes."""
    with read_session(ctx.engine) as session:
        rows = session.execute(
            select(col(Contact.zone), func.count())
            .where(col(Contact.erased_at).is_(None), col(Contact.zone) != "")
            .group_by(col(Contact.zone))
            .order_by(col(Contact.zone))
        ).all()
    return [(zone, int(count)) for zone, count in rows]


def prefill(ctx: Context, draft: AlertDraft) -> str:
    """The template with what Tocsin knows filled in: the town, the date and time in
    the town's zone, the chosen zones. {lieu} stays for the operator to type."""
    if not draft.template:
        return draft.text
    template = templates(ctx).get(draft.template, "")
    now = ctx.clock.now().astimezone(ZoneInfo(ctx.config.town.timezone))
    # Residents read French whatever the console's language.
    zones = (EVERYWHERE,) if draft.everyone else draft.zones
    return fill_template(template, template_values(ctx.config.town.name, now, zones))


def final_text(ctx: Context, text: str) -> str:
    """What residents receive: the text and the topic's STOP mention, if it has one."""
    return message_text(
        ctx, CampaignRequest(topic=alert_topic(ctx), text=text, sender_id="", audience=Audience())
    )


def alert_request(ctx: Context, draft: AlertDraft) -> CampaignRequest:
    return CampaignRequest(
        topic=alert_topic(ctx),
        text=draft.text,
        sender_id=draft.sender_id or ctx.config.town.sender_id,
        audience=draft.audience(),
        kind="emergency",
    )


def preview(ctx: Context, draft: AlertDraft) -> Preview:
    # The text does not change who receives it; a placeholder keeps validation happy.
    request = alert_request(ctx, replace(draft, text=draft.text or "-"))
    return preview_campaign(ctx, request)


def send_alert(
    ctx: Context, draft: AlertDraft, on_started: Callable[[int], None] | None = None
) -> Enqueued:
    return create_campaign(ctx, alert_request(ctx, draft), on_started=on_started)
