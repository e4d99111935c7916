"""STOP, however a resident writes it."""

from __future__ import annotations

import pytest
from sqlmodel import Session, col, select

from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.service import ContactInput, add_contact, is_suppressed
from console.context import Context
from console.sending.inbound import handle_inbound, parse_stop
from console.sending.providers.base import InboundSms
from storage.models import AuditEntry, ConsentEvent, ConsentState


@pytest.mark.parametrize("text", ["STOP", "stop", "Stop.", "  STOP  ", "Arrêt", "stop !"])
def test_stop_alone_means_everything(ctx: Context, text: str) -> None:
    found = parse_stop(ctx, text)
    assert found is not None and found.everything and found.topics == ()


@pytest.mark.parametrize(
    ("text", "topics"),
    [
        ("STOP infos", ("infos",)),
        ("stop Événements", ("evenements",)),
        ("Stop evenements travaux", ("evenements", "travaux")),
        ("STOP ÉLECTIONS merci", ("elections",)),
    ],
)
def test_stop_with_a_topic_word(ctx: Context, text: str, topics: tuple[str, ...]) -> None:
    found = parse_stop(ctx, text)
    assert found is not None and found.topics == topics and not found.everything


@pytest.mark.parametrize("text", ["", "Merci pour l'info", "non stop", "STOPPE", "Bonjour stop"])
def test_not_a_stop(ctx: Context, text: str) -> None:
    assert parse_stop(ctx, text) is None


def test_stop_withdraws_every_topic_and_suppresses(ctx: Context) -> None:
    contact = add_contact(ctx, ContactInput(number="06 40 00 00 01", name="Léa"))
    assert contact.id is not None
    record_consent(
        ctx,
        ConsentRequest(contact_id=contact.id, topic="infos", action="grant", source="paper_form"),
    )
    outcome = handle_inbound(ctx, InboundSms("+33640000001", "MAIRIE", "Stop", "SM123"), "twilio")
    assert outcome.stop and outcome.contact_id == contact.id
    with Session(ctx.engine) as session:
        states = {
            s.topic: s.granted
            for s in session.exec(
                select(ConsentState).where(col(ConsentState.contact_id) == contact.id)
            )
        }
        proofs = {
            e.proof_ref
            for e in session.exec(
                select(ConsentEvent).where(col(ConsentEvent.action) == "withdraw")
            )
        }
        assert is_suppressed(session, ctx, "+33640000001")
        audit = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "inbound.stop")
        ).one()
    assert states == dict.fromkeys(ctx.config.topics, False)
    assert proofs == {"inbound:1:twilio:SM123"}
    assert "+33" not in audit.details and "640000001" not in audit.details


def test_stop_for_one_topic_does_not_suppress(ctx: Context) -> None:
    contact = add_contact(ctx, ContactInput(number="06 40 00 00 02"))
    handle_inbound(ctx, InboundSms("0640000002", "", "STOP infos"), "kannel")
    with Session(ctx.engine) as session:
        states = {s.topic: s.granted for s in session.exec(select(ConsentState))}
        assert not is_suppressed(session, ctx, "+33640000002")
    assert states == {"infos": False} and contact.id is not None


def test_stop_from_an_unknown_number_still_suppresses(ctx: Context) -> None:
    outcome = handle_inbound(ctx, InboundSms("+33640000009", "", "STOP"), "kannel")
    assert outcome.stop and outcome.contact_id is None
    with Session(ctx.engine) as session:
        assert is_suppressed(session, ctx, "+33640000009")


def test_other_messages_change_nothing(ctx: Context) -> None:
    add_contact(ctx, ContactInput(number="06 40 00 00 03"))
    outcome = handle_inbound(ctx, InboundSms("+33640000003", "", "Merci !"), "kannel")
    assert not outcome.stop
    with Session(ctx.engine) as session:
        assert session.exec(select(ConsentEvent)).first() is None
