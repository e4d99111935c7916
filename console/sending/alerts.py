"""The emergency send, as the console walks it: a template, an audience, a text, a
confirmation. Kept apart from the screens so it is tested without them.

`AlertFlow` owns the order of the steps and what each needs before the next one: the
screens map a step to its screen and never name each other."""

from __future__ import annotations

import os
import socket
from collections.abc import Callable
from dataclasses import dataclass, field, replace
from enum import StrEnum
from zoneinfo import ZoneInfo

from sqlalchemy import func, select
from sqlmodel import col

from console.composing.composer import fill_template, template_values, unfilled_placeholders
from console.context import Context
from console.errors import TocsinError
from console.roles import Role
from console.sending.campaigns import (
    Audience,
    CampaignRequest,
    Enqueued,
    Preview,
    check_sender_id,
    create_campaign,
    message_text,
    preview_campaign,
)
from console.sending.states import QUEUED, SENDING
from console.sending.workers import ALIVE_WITHIN_S, alive_workers
from storage.engine import read_session
from storage.models import Campaign, Contact, Message

# What {zone} says when the alert goes to every resident.
EVERYWHERE = "toute la commune"


@dataclass(frozen=True)
class AlertDraft:
    template: str = ""  # the template's label; "" for a free text
    everyone: bool = True
    zones: tuple[str, ...] = ()
    text: str = ""
    sender_id: str = ""
    # The text as the composer first showed it (the template filled in): while the
    # text is still exactly this, the operator has not typed anything of their own.
    prefilled: str = ""
    # The choices (template, everyone, zones) that prefilled text was made for.
    prefilled_for: tuple[str, bool, tuple[str, ...]] | None = None

    def choices(self) -> tuple[str, bool, tuple[str, ...]]:
        """What the prefilled text depends on."""
        return (self.template, self.everyone, self.zones)

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
    # The text does not change who receives it (and may still hold a {lieu} to fill):
    # a stand-in keeps validation happy.
    request = alert_request(ctx, replace(draft, text="-"))
    return preview_campaign(ctx, request)


def send_alert(
    ctx: Context, draft: AlertDraft, on_started: Callable[[int], None] | None = None
) -> Enqueued:
    return create_campaign(ctx, alert_request(ctx, draft), on_started=on_started)


# The steps, in order -------------------------------------------------------------


class Step(StrEnum):
    TEMPLATE = "template"
    AUDIENCE = "audience"
    COMPOSE = "compose"
    CONFIRM = "confirm"


STEPS: tuple[Step, ...] = tuple(Step)


class AlertIncomplete(TocsinError):
    """What is missing before the next step; `code` is a catalog key under error."""


def may_send(ctx: Context) -> bool:
    return ctx.role >= Role.ALERTER


def who_may_send(ctx: Context) -> tuple[str, ...]:
    """The config's entries (user, @group or *) that hold the alerter role or above,
    so the screen can say who to call."""
    roles = ctx.config.roles
    return tuple(dict.fromkeys([*roles.alerter, *roles.admin]))


def check_message(ctx: Context, draft: AlertDraft) -> None:
    """What the text and the sender need before the confirmation; then the role."""
    if not draft.text.strip():
        raise AlertIncomplete("the message is empty", "campaign_empty")
    unfilled = unfilled_placeholders(draft.text)
    if unfilled:
        names = ", ".join(f"{{{name}}}" for name in unfilled)
        raise AlertIncomplete(
            f"fill in the placeholders first: {names}", "alert_unfilled", names=names
        )
    check_sender_id(draft.sender_id)
    if not may_send(ctx):
        raise AlertIncomplete(
            f"{ctx.operator} may prepare the alert but not send it",
            "alert_not_alerter",
            operator=ctx.operator,
            role_code=f"role_{ctx.role.name.lower()}",
        )


def check_audience(draft: AlertDraft) -> None:
    if not draft.everyone and not draft.zones:
        raise AlertIncomplete("no audience: everyone or at least one zone", "alert_no_audience")


@dataclass
class AlertFlow:
    """One alert being prepared: the step it is at and the draft every step fills in.

    Going back keeps what was typed; going forward checks the step being left. A text
    the operator typed survives a change of zones or template; a text still exactly
    as prefilled follows the new template and zones."""

    ctx: Context
    draft: AlertDraft = field(default_factory=AlertDraft)
    step: Step = Step.TEMPLATE

    @property
    def number(self) -> int:
        """1 to len(STEPS), as the screen shows it."""
        return STEPS.index(self.step) + 1

    def forward(self, draft: AlertDraft) -> Step:
        """Leave the current step with what it holds; raises AlertIncomplete."""
        if self.step is Step.CONFIRM:
            raise ValueError("the confirmation is the last step: it sends")
        if self.step is Step.AUDIENCE:
            check_audience(draft)
        elif self.step is Step.COMPOSE:
            check_message(self.ctx, draft)
        self.draft = self._carried(draft)
        self.step = STEPS[STEPS.index(self.step) + 1]
        return self.step

    def back(self, draft: AlertDraft) -> Step | None:
        """One step back, keeping what the step held; None when leaving the first."""
        self.draft = self._carried(draft)
        index = STEPS.index(self.step)
        if index == 0:
            return None
        self.step = STEPS[index - 1]
        return self.step

    def composing(self) -> AlertDraft:
        """The draft the composer opens on: the operator's text, or the template filled
        in with what Tocsin knows (recorded as prefilled)."""
        if not self.draft.text:
            self.restart_from_template()
        return self.draft

    def restart_from_template(self) -> str:
        """The chosen template filled in anew (the operator's text dropped)."""
        draft = self.draft
        text = prefill(self.ctx, replace(draft, text=""))
        self.draft = replace(draft, text=text, prefilled=text, prefilled_for=draft.choices())
        return text

    @property
    def text_kept(self) -> bool:
        """A text the operator typed, kept though another template or other zones were
        chosen since: the template filled in for them is one key away."""
        draft = self.draft
        return (
            bool(draft.template)
            and draft.prefilled_for != draft.choices()
            and draft.text != draft.prefilled
        )

    def _carried(self, new: AlertDraft) -> AlertDraft:
        old = self.draft
        untouched = new.text == new.prefilled
        if new.choices() != old.choices() and untouched:
            # Nothing of the operator's: the composer prefills the new choice.
            return replace(new, text="", prefilled="", prefilled_for=None)
        return new


# What is sending now, said before an alert is confirmed and before quitting ---------


@dataclass(frozen=True)
class SendingCampaign:
    id: int
    kind: str
    waiting: int


@dataclass(frozen=True)
class SendingNow:
    campaigns: tuple[SendingCampaign, ...]
    workers_alive: int
    # A worker of this very process (the demo's): quitting the console stops it.
    worker_in_this_process: bool

    @property
    def waiting(self) -> int:
        return sum(c.waiting for c in self.campaigns)

    @property
    def alerts(self) -> tuple[SendingCampaign, ...]:
        return tuple(c for c in self.campaigns if c.kind == "emergency")


def sending_now(ctx: Context) -> SendingNow:
    """Campaigns with messages still to hand to the provider, and who sends them."""
    now = ctx.clock.now()
    with read_session(ctx.engine) as session:
        rows = session.execute(
            select(col(Campaign.id), col(Campaign.kind), func.count())
            .join(Message, col(Message.campaign_id) == col(Campaign.id))
            .where(
                col(Campaign.status).in_(("queued", "running")),
                col(Campaign.start_at) <= now,
                col(Message.state).in_((QUEUED, SENDING)),
            )
            .group_by(col(Campaign.id), col(Campaign.kind))
            .order_by(col(Campaign.id))
        ).all()
    workers = alive_workers(ctx.engine, now, ALIVE_WITHIN_S)
    here = socket.gethostname(), os.getpid()
    return SendingNow(
        campaigns=tuple(SendingCampaign(int(i), str(k), int(n)) for i, k, n in rows),
        workers_alive=len(workers),
        worker_in_this_process=any((w.host, w.pid) == here for w in workers),
    )
