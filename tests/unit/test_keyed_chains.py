"""Keyed chains hold against a rewrite by someone with write access to the database
but not the key: recomputed hashes, a cut tail with the head rolled back, a chain
"downgraded" to the unkeyed links; and what sending reads (consent state,
suppression list) must follow from the events.

The forger below does what a local user with `sqlite3` or `psql` can: rewrite any
row and recompute every hash after it, with plain SHA-256 or an HMAC under a key of
their own, and rewrite the head to match.
"""

from __future__ import annotations

import hashlib
import hmac
import json
from datetime import timedelta
from typing import Any

import pytest
from alembic import command
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from console.audit import (
    Anchor,
    ChainHeadInvalid,
    audit_fields,
    chain_heads,
    consent_fields,
    parse_anchor,
    read_heads,
    verify_chains,
)
from console.clock import FrozenClock
from console.consent.integrity import check_consent_state, check_suppression
from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.service import ContactInput, add_contact, erase_contact
from console.context import Context
from console.errors import TocsinError
from console.rekey import RekeyRefused, rekey_chains
from console.sending.inbound import handle_inbound
from console.sending.providers.base import InboundSms
from storage.chain import GENESIS, canonical, derive_chain_key, legacy_link_hash
from storage.migrate import _config, upgrade
from storage.models import AuditEntry, ChainHead, ConsentEvent, ConsentState, Suppression
from tests.conftest import TEST_KEY, make_context

NUMBER = "06 12 34 56 78"


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def _town(ctx: Context, clock: FrozenClock) -> int:
    """A resident who granted, then sent STOP by SMS; returns their contact id."""
    contact = add_contact(ctx, ContactInput(number=NUMBER, name="Élodie Garçon"))
    assert contact.id is not None
    for topic in ("evenements", "travaux"):
        clock.advance(timedelta(minutes=1))
        record_consent(ctx, ConsentRequest(contact.id, topic, "grant", "paper_form"))
    clock.advance(timedelta(minutes=1))
    handle_inbound(ctx, InboundSms(sender="+33612345678", recipient="MAIRIE", text="STOP"), "sim")
    return contact.id


def _ok(engine: Engine) -> bool:
    chains = verify_chains(engine)
    return all(not problems for _, problems in chains.values())


def _hmac_with(key: bytes, prev: str, fields: dict[str, Any]) -> str:
    return hmac.new(key, (prev + canonical(fields)).encode(), hashlib.sha256).hexdigest()


def _forge(engine: Engine, table: str, edit_seq: int, changes: dict[str, str], rehash: Any) -> None:
    """Edit one row, recompute every hash from it on with `rehash(prev, fields)` and
    make the head agree (seq and last hash; its HMAC the forger cannot make)."""
    model: Any = ConsentEvent if table == "consent_event" else AuditEntry
    fields = consent_fields if table == "consent_event" else audit_fields
    chain = "consent" if table == "consent_event" else "audit"
    with Session(engine) as session:
        rows = session.exec(select(model).order_by(col(model.seq))).all()
        prev = GENESIS
        for row in rows:
            if row.seq == edit_seq:
                for name, value in changes.items():
                    setattr(row, name, value)
            if row.seq >= edit_seq:
                row.prev_hash = prev
                row.hash = rehash(prev, fields(row))
                session.add(row)
            prev = row.hash
        head = session.get(ChainHead, chain)
        assert head is not None
        head.last_hash = prev
        session.add(head)
        session.commit()


def _stop_event_seq(engine: Engine) -> int:
    with Session(engine) as session:
        return (
            session.exec(
                select(ConsentEvent.seq).where(col(ConsentEvent.action) == "withdraw")
            ).first()
            or 0
        )


def test_a_fresh_town_verifies_with_its_heads_keyed(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    assert _ok(ctx.engine)
    assert check_consent_state(ctx.engine).problems == []
    assert check_suppression(ctx.engine).problems == []
    heads = {h.chain: h for h in read_heads(ctx.engine, TEST_KEY)}
    assert heads["consent"].keyed and heads["audit"].keyed
    assert heads["consent"].seq == 7  # two grants, the STOP withdraws all five topics
    assert chain_heads(ctx.engine, TEST_KEY) == {
        "audit": f"{heads['audit'].seq}:{heads['audit'].hash}",
        "consent": f"7:{heads['consent'].hash}",
    }


def test_the_chains_are_keyed_not_plain_sha256(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    with Session(ctx.engine) as session:
        first = session.exec(select(ConsentEvent).where(col(ConsentEvent.seq) == 1)).one()
    assert first.hash != legacy_link_hash(GENESIS, consent_fields(first))
    assert first.hash == _hmac_with(
        derive_chain_key(TEST_KEY, "consent"), GENESIS, consent_fields(first)
    )
    # Each chain has its own sub-key, and neither is the suppression list's key.
    assert derive_chain_key(TEST_KEY, "consent") != derive_chain_key(TEST_KEY, "audit")
    assert TEST_KEY not in (derive_chain_key(TEST_KEY, "consent"),)


def test_stop_rewritten_into_a_grant_with_sha256_recomputed(
    ctx: Context, clock: FrozenClock
) -> None:
    """The attack of the issue: the STOP becomes a grant, every hash after it is
    recomputed and the head follows. Plain SHA-256 no longer forges anything."""
    _town(ctx, clock)
    stop = _stop_event_seq(ctx.engine)
    _forge(ctx.engine, "consent_event", stop, {"action": "grant"}, legacy_link_hash)
    _, problems = verify_chains(ctx.engine)["consent"]
    assert problem_at(problems, stop, "content does not match its hash")
    assert any("does not match its key" in p.reason for p in problems)


def test_rewrite_with_an_hmac_under_another_key(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    stop = _stop_event_seq(ctx.engine)
    guessed = derive_chain_key(b"f" * 64, "consent")
    _forge(
        ctx.engine,
        "consent_event",
        stop,
        {"action": "grant"},
        lambda prev, fields: _hmac_with(guessed, prev, fields),
    )
    _, problems = verify_chains(ctx.engine)["consent"]
    assert problem_at(problems, stop, "content does not match its hash")


def test_audit_entry_rewritten_and_recomputed(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    _forge(ctx.engine, "audit_entry", 2, {"operator": "intrus"}, legacy_link_hash)
    _, problems = verify_chains(ctx.engine)["audit"]
    assert problem_at(problems, 2, "content does not match its hash")


def test_tail_cut_and_head_rolled_back(ctx: Context, clock: FrozenClock) -> None:
    """The STOP's events cut off the end and the head set back onto the last kept
    entry: every remaining link checks out, the head's HMAC does not."""
    _town(ctx, clock)
    stop = _stop_event_seq(ctx.engine)
    with Session(ctx.engine) as session:
        kept = session.exec(select(ConsentEvent).where(col(ConsentEvent.seq) == stop - 1)).one()
    _sql(ctx.engine, "DELETE FROM consent_event WHERE seq >= :s", s=stop)
    _sql(
        ctx.engine,
        "UPDATE chain_head SET seq = :s, last_hash = :h WHERE name = 'consent'",
        s=stop - 1,
        h=kept.hash,
    )
    count, problems = verify_chains(ctx.engine)["consent"]
    assert count == stop - 1
    assert [p.reason for p in problems] == [
        "the chain head does not match its key: rolled back or edited"
    ]


def test_an_older_genuine_head_put_back_is_caught_by_the_recorded_anchor(
    ctx: Context, clock: FrozenClock
) -> None:
    """Someone who saved the head row earlier puts it back over a cut tail: it is
    authentic, so only the head recorded outside (`audit head`) tells."""
    contact_id = _town(ctx, clock)
    with Session(ctx.engine) as session:
        old = session.get(ChainHead, "consent")
        assert old is not None
        saved = (old.seq, old.last_hash, old.mac)
    clock.advance(timedelta(minutes=1))
    record_consent(ctx, ConsentRequest(contact_id, "infos", "withdraw", "phone_call"))
    recorded = {h.chain: h.anchor for h in read_heads(ctx.engine, TEST_KEY)}
    _sql(ctx.engine, "DELETE FROM consent_event WHERE seq > :s", s=saved[0])
    _sql(
        ctx.engine,
        "UPDATE chain_head SET seq = :s, last_hash = :h, mac = :m WHERE name = 'consent'",
        s=saved[0],
        h=saved[1],
        m=saved[2],
    )
    assert verify_chains(ctx.engine)["consent"] == (saved[0], [])
    _, problems = verify_chains(ctx.engine, expect=[recorded["consent"]])["consent"]
    assert [p.reason for p in problems] == [
        f"entry {saved[0] + 1} of the recorded head is missing: the chain was cut"
    ]


def test_the_recorded_head_of_a_rewritten_chain_differs(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    anchor = {h.chain: h.anchor for h in read_heads(ctx.engine, TEST_KEY)}["audit"]
    assert verify_chains(ctx.engine, expect=[anchor])["audit"][1] == []
    _forge(ctx.engine, "audit_entry", 1, {"operator": "intrus"}, legacy_link_hash)
    _, problems = verify_chains(ctx.engine, expect=[anchor])["audit"]
    assert problem_at(
        problems, anchor.seq, "differs from the recorded head: the chain was rewritten"
    )


def test_downgraded_to_unkeyed_links(ctx: Context, clock: FrozenClock) -> None:
    """Everything recomputed with SHA-256 and the head made to look as if the chain
    predated the keys: verify says so instead of passing it."""
    _town(ctx, clock)
    _forge(ctx.engine, "consent_event", 1, {}, legacy_link_hash)
    _sql(ctx.engine, "UPDATE chain_head SET keyed_from = seq + 1, mac = '' WHERE name = 'consent'")
    _, problems = verify_chains(ctx.engine)["consent"]
    reasons = [p.reason for p in problems]
    assert "the chain head is not keyed yet: run `tocsin audit rekey` once" in reasons
    assert any("linked by plain SHA-256" in r for r in reasons)


def test_keyed_from_moved_without_the_key(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    _forge(ctx.engine, "consent_event", 1, {}, legacy_link_hash)
    _sql(ctx.engine, "UPDATE chain_head SET keyed_from = seq + 1 WHERE name = 'consent'")
    _, problems = verify_chains(ctx.engine)["consent"]
    assert "the chain head does not match its key: rolled back or edited" in [
        p.reason for p in problems
    ]


def test_chain_heads_refuses_a_head_that_does_not_match(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    _sql(ctx.engine, "UPDATE chain_head SET seq = seq - 1 WHERE name = 'audit'")
    with pytest.raises(ChainHeadInvalid, match="audit chain's head does not match its key"):
        chain_heads(ctx.engine, TEST_KEY)


def test_anchor_format() -> None:
    anchor = parse_anchor("consent:12:" + "a" * 64)
    assert anchor == Anchor("consent", 12, "a" * 64) and str(anchor) == "consent:12:" + "a" * 64
    for bad in ("12:" + "a" * 64, "audit:x:" + "a" * 64, "audit:1:abc", "other:1:" + "a" * 64):
        with pytest.raises(TocsinError, match="expected CHAIN:SEQ:HASH"):
            parse_anchor(bad)


# ---- what sending reads ---------------------------------------------------------


def test_consent_state_edited_back_to_granted(ctx: Context, clock: FrozenClock) -> None:
    contact_id = _town(ctx, clock)
    _sql(
        ctx.engine,
        "UPDATE consent_state SET granted = :t WHERE contact_id = :c AND topic = 'evenements'",
        t=True,
        c=contact_id,
    )
    problems = check_consent_state(ctx.engine).problems
    assert len(problems) == 1
    assert problems[0].reason.startswith(
        f"contact #{contact_id}, evenements: the current consent says granted, "
        "the ledger says withdrawn"
    )
    assert _ok(ctx.engine)  # the chains themselves are intact: this is what they miss


def test_consent_state_row_without_events_and_one_deleted(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    other = add_contact(ctx, ContactInput(number="06 98 76 54 32"))
    _sql(
        ctx.engine,
        "INSERT INTO consent_state (contact_id, topic, granted, event_id, updated_at) "
        "VALUES (:c, 'infos', :t, 1, :at)",
        c=other.id,
        t=True,
        at=clock.now().replace(tzinfo=None),
    )
    _sql(ctx.engine, "DELETE FROM consent_state WHERE topic = 'travaux'")
    reasons = [p.reason for p in check_consent_state(ctx.engine).problems]
    assert any("travaux: the current consent says no current consent" in r for r in reasons)
    assert any("infos: the current consent says granted, with no event" in r for r in reasons)


def test_consent_state_pointing_at_an_older_event(ctx: Context, clock: FrozenClock) -> None:
    contact_id = _town(ctx, clock)
    clock.advance(timedelta(minutes=1))
    record_consent(ctx, ConsentRequest(contact_id, "evenements", "grant", "paper_form"))
    with Session(ctx.engine) as session:
        first = session.exec(select(ConsentEvent).where(col(ConsentEvent.seq) == 1)).one()
    _sql(
        ctx.engine,
        "UPDATE consent_state SET event_id = :e WHERE topic = 'evenements'",
        e=first.id,
    )
    reasons = [p.reason for p in check_consent_state(ctx.engine).problems]
    assert reasons and "says granted, from another event" in reasons[0]


def test_a_late_paper_form_does_not_count_as_a_difference(ctx: Context, clock: FrozenClock) -> None:
    """A grant typed in late, dated before the STOP, leaves the STOP in force: the
    rule the check applies is the ledger's own."""
    contact_id = _town(ctx, clock)
    clock.advance(timedelta(hours=1))
    record_consent(
        ctx,
        ConsentRequest(
            contact_id,
            "evenements",
            "grant",
            "paper_form",
            occurred_at=clock.now() - timedelta(days=2),
        ),
    )
    assert check_consent_state(ctx.engine).problems == []
    with Session(ctx.engine) as session:
        state = session.get(ConsentState, (contact_id, "evenements"))
    assert state is not None and state.granted is False


def test_stop_removed_from_the_suppression_list(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    _sql(ctx.engine, "DELETE FROM suppression")
    problems = check_suppression(ctx.engine).problems
    assert len(problems) == 1
    assert problems[0].reason.endswith("is no longer on the suppression list")
    with Session(ctx.engine) as session:
        stop = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "inbound.stop")
        ).one()
    assert problems[0].seq == stop.seq


def test_suppression_entry_nobody_asked_for(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    _sql(
        ctx.engine,
        "INSERT INTO suppression (number_hash, created_at, reason) VALUES (:h, :at, 'STOP')",
        h="ab" * 32,
        at=clock.now().replace(tzinfo=None),
    )
    reasons = [p.reason for p in check_suppression(ctx.engine).problems]
    assert reasons == [
        "suppression entry abababababab... follows from no STOP or erasure in the audit trail"
    ]


def test_erasure_keeps_the_suppression_derivable(ctx: Context, clock: FrozenClock) -> None:
    contact = add_contact(ctx, ContactInput(number="06 98 76 54 32"))
    assert contact.id is not None
    record_consent(ctx, ConsentRequest(contact.id, "infos", "withdraw", "phone_call"))
    assert erase_contact(ctx, contact.id).suppressed
    assert check_suppression(ctx.engine).problems == []
    assert check_consent_state(ctx.engine).problems == []
    with Session(ctx.engine) as session:
        entry = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "contact.erase")
        ).one()
    details = json.loads(entry.details)
    # A keyed hash, never the number, in the trail.
    assert len(details["number_hash"]) == 64 and "98" not in entry.details


def test_inbound_stop_names_the_same_actor_in_both_ledgers(
    ctx: Context, clock: FrozenClock
) -> None:
    _town(ctx, clock)
    with Session(ctx.engine) as session:
        withdrawals = session.exec(
            select(ConsentEvent).where(col(ConsentEvent.action) == "withdraw")
        ).all()
        stop = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "inbound.stop")
        ).one()
    assert {w.operator for w in withdrawals} == {"sms:sim"} == {stop.operator}


# ---- chains from before the keys (migration 0008) and `audit rekey` --------------


def _legacy_town(engine: Engine, ctx: Context, clock: FrozenClock) -> None:
    """A town whose chains were written before 0008: plain SHA-256 links, and the
    head as the migration leaves it."""
    _town(ctx, clock)
    for table in ("consent_event", "audit_entry"):
        _forge(engine, table, 1, {}, legacy_link_hash)
    _sql(engine, "UPDATE chain_head SET keyed_from = seq + 1, mac = ''")


def test_migration_0008_keeps_older_links_and_keys_what_follows(
    db_url: str, engine: Engine, clock: FrozenClock, config: Any
) -> None:
    """Down to 0004, a chain written the old way, up again: verify names the old
    entries, the next append is keyed, and `rekey` keys the rest."""
    cfg = _config()
    with engine.begin() as conn:
        cfg.attributes["connection"] = conn
        command.downgrade(cfg, "0004")
    prev = GENESIS
    with engine.begin() as conn:
        conn.execute(
            text(
                "INSERT INTO contact (id, number, number_kind, sendable, name, zone, groups, "
                "notes, source, sort_key, search_key, created_at, updated_at) VALUES "
                "(1, '+33612345678', 'mobile', :t, 'A', '', '', '', '', 'a', 'a', :at, :at)"
            ),
            {"t": True, "at": clock.now().replace(tzinfo=None)},
        )
        for seq in (1, 2):
            fields = {
                "seq": seq,
                "contact_id": 1,
                "topic": "infos",
                "action": "grant" if seq == 1 else "withdraw",
                "source": "counter",
                "proof_ref": "",
                "text_version": "v1",
                "operator": "ancien",
                "occurred_at": clock.now() + timedelta(minutes=seq),
                "recorded_at": clock.now() + timedelta(minutes=seq),
            }
            digest = legacy_link_hash(prev, fields)
            conn.execute(
                text(
                    "INSERT INTO consent_event (seq, contact_id, topic, action, source, "
                    "proof_ref, text_version, operator, occurred_at, recorded_at, prev_hash, "
                    "hash) VALUES (:seq, 1, 'infos', :action, 'counter', '', 'v1', 'ancien', "
                    ":at, :at, :prev, :hash)"
                ),
                {
                    "seq": seq,
                    "action": fields["action"],
                    "at": fields["occurred_at"].replace(tzinfo=None),
                    "prev": prev,
                    "hash": digest,
                },
            )
            prev = digest
        conn.execute(
            text("INSERT INTO chain_head (name, seq, last_hash) VALUES ('consent', 2, :h)"),
            {"h": prev},
        )
    upgrade(engine)
    if engine.dialect.name == "postgresql":
        _sql(engine, "SELECT setval('consent_event_id_seq', 2)")
        _sql(engine, "SELECT setval('contact_id_seq', 1)")
    ctx = make_context(engine, config, clock)
    _, problems = verify_chains(engine)["consent"]
    assert [p.reason for p in problems] == [
        "the chain head is not keyed yet: run `tocsin audit rekey` once",
        "entries 1 to 2 are linked by plain SHA-256, from before the chains were keyed: "
        "run `tocsin audit rekey` once",
    ]
    # The next append is keyed, linked to the last unkeyed entry.
    clock.advance(timedelta(hours=1))
    record_consent(ctx, ConsentRequest(1, "travaux", "grant", "counter"))
    _, problems = verify_chains(engine)["consent"]
    assert [p.seq for p in problems] == [1] and "plain SHA-256" in problems[0].reason

    done = rekey_chains(ctx)
    assert {r.chain for r in done} == {"consent"}
    assert done[0].entries == 3 and done[0].previous_head.startswith("3:")
    assert verify_chains(engine) == {"audit": (2, []), "consent": (3, [])}
    with Session(engine) as session:
        rekey = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "audit.rekey")
        ).one()
    assert json.loads(rekey.details)["chains"]["consent"]["previous_head"] == done[0].previous_head
    # Once is enough.
    assert rekey_chains(ctx) == []


def test_rekey_keys_a_legacy_town_and_freezes_its_suppression_list(
    ctx: Context, clock: FrozenClock
) -> None:
    _legacy_town(ctx.engine, ctx, clock)
    # A STOP from before the trail named its hash.
    _sql(ctx.engine, "UPDATE audit_entry SET details = '{}' WHERE action = 'inbound.stop'")
    _forge(ctx.engine, "audit_entry", 1, {}, legacy_link_hash)
    assert check_suppression(ctx.engine).problems != []
    done = rekey_chains(ctx)
    assert {r.chain for r in done} == {"audit", "consent"}
    assert _ok(ctx.engine)
    assert check_suppression(ctx.engine).problems == []
    # The baseline is the list as it stood: an entry removed later is still caught.
    _sql(ctx.engine, "DELETE FROM suppression")
    with Session(ctx.engine) as session:
        rekey = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "audit.rekey")
        ).one()
    problems = check_suppression(ctx.engine).problems
    assert [p.seq for p in problems] == [rekey.seq]


def test_rekey_refuses_a_tampered_legacy_chain(ctx: Context, clock: FrozenClock) -> None:
    """Re-hashing a chain that does not check out would launder the tampering."""
    _legacy_town(ctx.engine, ctx, clock)
    _sql(ctx.engine, "UPDATE consent_event SET action = 'grant' WHERE action = 'withdraw'")
    with pytest.raises(RekeyRefused, match="the consent chain does not check out"):
        rekey_chains(ctx)
    _, problems = verify_chains(ctx.engine)["consent"]
    assert any(p.reason == "content does not match its hash" for p in problems)


def test_rekey_refuses_a_head_keyed_under_another_key(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    _sql(ctx.engine, "UPDATE chain_head SET keyed_from = 2 WHERE name = 'consent'")
    with pytest.raises(RekeyRefused, match="does not match its key"):
        rekey_chains(ctx)


def problem_at(problems: list[Any], seq: int, reason: str) -> bool:
    return any(p.seq == seq and p.reason == reason for p in problems)


def test_suppression_rows_are_hashes(ctx: Context, clock: FrozenClock) -> None:
    _town(ctx, clock)
    with Session(ctx.engine) as session:
        rows = session.exec(select(Suppression)).all()
    assert len(rows) == 1 and len(rows[0].number_hash) == 64
