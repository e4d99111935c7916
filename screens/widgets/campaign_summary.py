"""A campaign in a few lines, as the queue's detail and the campaign's view show it:
heading, progress, every state count, rate and ETA, the text."""

from __future__ import annotations

from zoneinfo import ZoneInfo

from rich.text import Text

from console.context import Context
from console.i18n import Translator
from console.sending.figures import bar, count, duration, percent, rate
from console.sending.send_queue import CampaignProgress
from console.sending.states import STATES, CampaignStatus, MessageState
from console.text import visible

# States always shown; the rarer ones only when a message is in them.
MAIN_STATES = (
    MessageState.QUEUED,
    MessageState.SENDING,
    MessageState.SUBMITTED,
    MessageState.DELIVERED,
    MessageState.FAILED,
    MessageState.UNCERTAIN,
    MessageState.SKIPPED,
)
STATUS_STYLE: dict[str, str] = {
    CampaignStatus.RUNNING: "bold green",
    CampaignStatus.QUEUED: "cyan",
    CampaignStatus.PAUSED: "yellow",
    CampaignStatus.CANCELLED: "dim",
    CampaignStatus.DONE: "dim",
}


def state_counts(t: Translator, counts: dict[str, int]) -> Text:
    line = Text()
    for state in STATES:
        if state not in MAIN_STATES and not counts[state]:
            continue
        if line:
            line.append(" · ", style="dim")
        style = (
            "red"
            if state in (MessageState.FAILED, MessageState.REJECTED, MessageState.UNDELIVERED)
            and counts[state]
            else "yellow"
            if state == MessageState.UNCERTAIN and counts[state]
            else ""
        )
        line.append(f"{t(f'state.{state}')} ", style="dim")
        line.append(count(t, counts[state]), style=style or "bold")
    return line


def campaign_heading(t: Translator, ctx: Context, c: CampaignProgress) -> Text:
    local = c.created_at.astimezone(ZoneInfo(ctx.config.town.timezone))
    heading = Text()
    heading.append(f"n°{c.id} ", style="bold")
    heading.append(t(f"kind.{c.kind}"), style="bold red" if c.kind == "emergency" else "")
    topic = ctx.config.topics.get(c.topic)
    heading.append(f" · {topic.label if topic else c.topic} · ")
    heading.append(t(f"status.{c.status}"), style=STATUS_STYLE.get(c.status, ""))
    heading.append(
        " · "
        + t(
            "envois.created",
            who=visible(c.created_by),
            date=local.strftime("%d/%m"),
            time=local.strftime("%Hh%M"),
        ),
        style="dim",
    )
    if c.status_reason:
        heading.append("\n" + visible(c.status_reason), style="red")
    return heading


def campaign_summary(t: Translator, ctx: Context, c: CampaignProgress, width: int) -> Text:
    text = campaign_heading(t, ctx, c)
    text.append("\n")
    text.append(bar(c.fraction, max(width - 30, 10)), style="green" if c.fraction >= 1 else "")
    text.append(f" {percent(c.fraction)} · {count(t, c.handled)}/{count(t, c.total)}")
    text.append("\n")
    text.append_text(state_counts(t, c.counts))
    text.append("\n")
    text.append(
        t("envois.rate_eta", rate=rate(t, c.rate), eta=duration(t, c.eta_seconds)), style="dim"
    )
    text.append("\n")
    # Residents never typed this text, but an operator did: shown as text, never markup.
    text.append(visible(c.text).replace("\n", " ⏎ "), style="italic")
    return text
