"""The alert's flow without the screens: the order of the steps, what each needs before
the next, what going back keeps, who may send, and what is sending now."""

from __future__ import annotations

from dataclasses import replace
from datetime import timedelta

import pytest

from console.config import Config
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.roles import Role
from console.sending.alerts import (
    STEPS,
    AlertDraft,
    AlertFlow,
    AlertIncomplete,
    Step,
    may_send,
    send_alert,
    sending_now,
    who_may_send,
)
from console.sending.campaign_ops import change_campaign
from console.sending.campaigns import (
    Audience,
    CampaignError,
    CampaignRequest,
    create_campaign,
)
from console.sending.workers import beat, new_owner
from tests.conftest import make_context


def _town(ctx: Context) -> None:
    for i, zone in enumerate(("Le Bourg", "Le Bourg", "La Rive")):
        add_contact(ctx, ContactInput(number=f"06 30 00 00 0{i}", zone=zone))


def _walk_to_compose(flow: AlertFlow, zones: tuple[str, ...] = ()) -> None:
    flow.forward(replace(flow.draft, template="Inondation"))
    flow.forward(replace(flow.draft, everyone=not zones, zones=zones))


def test_the_steps_in_order_and_back_out(ctx: Context) -> None:
    assert STEPS == (Step.TEMPLATE, Step.AUDIENCE, Step.COMPOSE, Step.CONFIRM)
    flow = AlertFlow(ctx)
    assert flow.step is Step.TEMPLATE and flow.number == 1
    _walk_to_compose(flow)
    assert flow.step is Step.COMPOSE and flow.number == 3
    draft = flow.composing()
    assert "ALERTE CRUE" in draft.text and draft.text == draft.prefilled
    assert flow.forward(replace(draft, sender_id="MAIRIE")) is Step.CONFIRM
    with pytest.raises(ValueError):
        flow.forward(flow.draft)  # the confirmation sends; there is no step after it
    assert flow.back(flow.draft) is Step.COMPOSE
    assert flow.back(flow.draft) is Step.AUDIENCE
    assert flow.back(flow.draft) is Step.TEMPLATE
    assert flow.back(flow.draft) is None


def test_each_step_says_what_it_needs(ctx: Context) -> None:
    flow = AlertFlow(ctx)
    flow.forward(flow.draft)  # a free text
    with pytest.raises(AlertIncomplete) as nobody:
        flow.forward(replace(flow.draft, everyone=False, zones=()))
    assert nobody.value.code == "alert_no_audience" and flow.step is Step.AUDIENCE
    flow.forward(replace(flow.draft, everyone=True))
    for text, sender, code in (
        ("  ", "MAIRIE", "campaign_empty"),
        ("Accident ({lieu})", "MAIRIE", "alert_unfilled"),
        ("Crue", "M", "campaign_sender_id"),
    ):
        with pytest.raises((AlertIncomplete, CampaignError)) as missing:
            flow.forward(replace(flow.draft, text=text, sender_id=sender))
        assert getattr(missing.value, "code", "") == code
        assert flow.step is Step.COMPOSE


@pytest.mark.parametrize("role", [Role.VIEWER, Role.OPERATOR])
def test_a_non_alerter_prepares_but_never_reaches_the_confirmation(
    engine, clock, role: Role
) -> None:  # type: ignore[no-untyped-def]
    ctx = make_context(engine, Config(), clock, role=role)
    assert not may_send(ctx)
    flow = AlertFlow(ctx)
    _walk_to_compose(flow)
    with pytest.raises(AlertIncomplete) as refused:
        flow.forward(replace(flow.composing(), sender_id="MAIRIE"))
    assert refused.value.code == "alert_not_alerter"
    assert flow.step is Step.COMPOSE


def test_who_may_send_comes_from_the_roles_config(engine, clock) -> None:  # type: ignore[no-untyped-def]
    config = Config.model_validate(
        {"roles": {"alerter": ["maire", "@astreinte"], "admin": ["root", "maire"]}}
    )
    ctx = make_context(engine, config, clock, role=Role.OPERATOR)
    assert who_may_send(ctx) == ("maire", "@astreinte", "root")


def test_going_back_keeps_a_typed_text_and_an_untouched_one_follows(ctx: Context) -> None:
    _town(ctx)
    flow = AlertFlow(ctx)
    _walk_to_compose(flow, ("Le Bourg",))
    untouched = flow.composing()
    assert "(Le Bourg)" in untouched.text
    flow.back(untouched)
    # Other zones, nothing typed: the template is filled in for them.
    flow.forward(replace(flow.draft, zones=("Le Bourg", "La Rive")))
    assert "(Le Bourg, La Rive)" in flow.composing().text
    assert not flow.text_kept
    typed = flow.draft.text + " Restez chez vous."
    flow.back(replace(flow.draft, text=typed))
    flow.back(flow.draft)
    assert flow.step is Step.TEMPLATE
    # The same template again: the typed text is there.
    flow.forward(replace(flow.draft, template="Inondation"))
    flow.forward(flow.draft)
    assert flow.composing().text == typed and not flow.text_kept
    # Another template: still the operator's text, and the flow says so.
    flow.back(flow.draft)
    flow.back(flow.draft)
    flow.forward(replace(flow.draft, template="Confinement"))
    flow.forward(flow.draft)
    assert flow.composing().text == typed and flow.text_kept
    assert "confinement" in flow.restart_from_template()
    assert not flow.text_kept


def _planned(ctx: Context, **changes: object) -> int:
    request = CampaignRequest(
        topic="alertes", text="Coupure d'eau", sender_id="MAIRIE", audience=Audience(everyone=True)
    )
    campaign_id = create_campaign(ctx, replace(request, **changes)).campaign_id  # type: ignore[arg-type]
    assert campaign_id is not None
    return campaign_id


def test_sending_now_counts_what_waits_and_who_sends_it(ctx: Context) -> None:
    _town(ctx)
    assert sending_now(ctx).campaigns == () and sending_now(ctx).workers_alive == 0
    planned = _planned(ctx)
    alert = send_alert(ctx, AlertDraft(text="Crue", sender_id="MAIRIE")).campaign_id
    paused = _planned(ctx)
    change_campaign(ctx, paused, "pause")
    _planned(ctx, start_at=ctx.clock.now() + timedelta(hours=2))
    now = sending_now(ctx)
    assert [(c.id, c.kind, c.waiting) for c in now.campaigns] == [
        (planned, "planned", 3),
        (alert, "emergency", 3),
    ]
    assert now.waiting == 6 and [c.id for c in now.alerts] == [alert]
    assert now.workers_alive == 0 and not now.worker_in_this_process
    beat(ctx.engine, "elsewhere:1:abc", "simulated", ctx.clock.now())
    now = sending_now(ctx)
    assert now.workers_alive == 1 and not now.worker_in_this_process
    beat(ctx.engine, new_owner(), "simulated", ctx.clock.now())
    assert sending_now(ctx).worker_in_this_process
