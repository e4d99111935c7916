"""The hash chains: tampering is found at the right place, appends never fork."""

from __future__ import annotations

import threading
import time
from datetime import timedelta

import pytest
from sqlalchemy import Engine, text
from sqlmodel import Session, col, select

from console.audit import append_audit, audit_fields, consent_fields, verify_chains
from console.clock import FrozenClock
from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from storage.chain import GENESIS, ChainProblem
from storage.chain import legacy_link_hash as link_hash
from storage.engine import write_session
from storage.models import AuditEntry, ChainHead, ConsentEvent, Contact
from tests.conftest import TEST_KEY


def _seed(ctx: Context, clock: FrozenClock, events: int = 5) -> int:
    """One contact and `events` consent events; returns the contact id."""
    contact = add_contact(ctx, ContactInput(number="06 12 34 56 78", name="Élodie Garçon"))
    assert contact.id is not None
    for i in range(events):
        clock.advance(timedelta(minutes=1))
        record_consent(
            ctx,
            ConsentRequest(
                contact.id, "evenements", "grant" if i % 2 == 0 else "withdraw", "counter"
            ),
        )
    return contact.id


def _sql(engine: Engine, statement: str, **params: object) -> None:
    with engine.begin() as conn:
        conn.execute(text(statement), params)


def _swap_seq(engine: Engine, table: str, a: int, b: int) -> None:
    _sql(engine, f"UPDATE {table} SET seq = -1 WHERE seq = :a", a=a)
    _sql(engine, f"UPDATE {table} SET seq = :a WHERE seq = :b", a=a, b=b)
    _sql(engine, f"UPDATE {table} SET seq = :b WHERE seq = -1", b=b)


def test_empty_database_verifies(engine: Engine) -> None:
    assert verify_chains(engine, TEST_KEY) == {"audit": (0, []), "consent": (0, [])}


def test_fresh_chains_verify(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    # contact.add + 5 consent audit entries; 5 consent events.
    assert verify_chains(ctx.engine) == {"audit": (6, []), "consent": (5, [])}


def test_chain_links_each_row_to_the_previous(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock, events=3)
    with Session(ctx.engine) as session:
        events = session.exec(select(ConsentEvent).order_by(col(ConsentEvent.seq))).all()
        head = session.get(ChainHead, "consent")
    assert [e.seq for e in events] == [1, 2, 3]
    assert events[0].prev_hash == GENESIS
    assert [e.prev_hash for e in events[1:]] == [e.hash for e in events[:-1]]
    assert head is not None and (head.seq, head.last_hash) == (3, events[-1].hash)
    assert len({e.hash for e in events}) == 3


def test_tampered_consent_topic(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    _sql(ctx.engine, "UPDATE consent_event SET topic = 'infos' WHERE seq = 3")
    result = verify_chains(ctx.engine)
    assert result["consent"] == (5, [ChainProblem(3, "content does not match its hash")])
    assert result["audit"] == (6, [])


def test_tampered_consent_action_and_rehashed_row(ctx: Context, clock: FrozenClock) -> None:
    """Re-hashing the edited row with plain SHA-256 forges nothing: the row's keyed
    hash no longer matches, and the next row's link breaks."""
    _seed(ctx, clock)
    with Session(ctx.engine) as session:
        row = session.exec(select(ConsentEvent).where(col(ConsentEvent.seq) == 2)).one()
        row.action = "grant"
        row.hash = link_hash(row.prev_hash, consent_fields(row))
        session.add(row)
        session.commit()
    assert verify_chains(ctx.engine)["consent"] == (
        5,
        [
            ChainProblem(2, "content does not match its hash"),
            ChainProblem(3, "previous hash does not match"),
        ],
    )


def test_deleted_middle_row(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    _sql(ctx.engine, "DELETE FROM consent_event WHERE seq = 3")
    assert verify_chains(ctx.engine)["consent"] == (
        4,
        [
            ChainProblem(4, "gap: expected seq 3"),
            ChainProblem(4, "previous hash does not match"),
            ChainProblem(5, "head says 5 entries, found 4"),
        ],
    )


def test_deleted_first_row(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    _sql(ctx.engine, "DELETE FROM consent_event WHERE seq = 1")
    count, problems = verify_chains(ctx.engine)["consent"]
    assert count == 4
    assert problems[:2] == [
        ChainProblem(2, "gap: expected seq 1"),
        ChainProblem(2, "previous hash does not match"),
    ]


def test_deleted_last_row(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    _sql(ctx.engine, "DELETE FROM consent_event WHERE seq = 5")
    assert verify_chains(ctx.engine)["consent"] == (
        4,
        [ChainProblem(5, "head says 5 entries, found 4")],
    )


def test_reordered_rows(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    _swap_seq(ctx.engine, "consent_event", 2, 3)
    count, problems = verify_chains(ctx.engine)["consent"]
    assert count == 5
    assert problems[0].seq == 2
    assert {p.seq for p in problems} == {2, 3, 4}
    assert ChainProblem(2, "previous hash does not match") in problems
    assert ChainProblem(4, "previous hash does not match") in problems


def test_tampered_audit_entry(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    _sql(ctx.engine, "UPDATE audit_entry SET operator = 'quelquun' WHERE seq = 2")
    result = verify_chains(ctx.engine)
    assert result["audit"] == (6, [ChainProblem(2, "content does not match its hash")])
    assert result["consent"] == (5, [])


def test_deleted_last_audit_entry(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    _sql(ctx.engine, "DELETE FROM audit_entry WHERE seq = 6")
    assert verify_chains(ctx.engine)["audit"] == (
        5,
        [ChainProblem(6, "head says 6 entries, found 5")],
    )


def test_reordered_audit_entries(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    _swap_seq(ctx.engine, "audit_entry", 4, 5)
    count, problems = verify_chains(ctx.engine)["audit"]
    assert count == 6
    assert problems[0] == ChainProblem(4, "previous hash does not match")
    assert {p.seq for p in problems} == {4, 5, 6}


def test_row_slipped_in_beyond_the_head(ctx: Context, clock: FrozenClock) -> None:
    _seed(ctx, clock)
    with Session(ctx.engine) as session:
        last = session.exec(select(AuditEntry).where(col(AuditEntry.seq) == 6)).one()
        forged = AuditEntry(
            seq=7,
            at=clock.now(),
            operator="intrus",
            action="contact.edit",
            target="contact:1",
            details="{}",
            prev_hash=last.hash,
            hash="",
        )
        forged.hash = link_hash(last.hash, audit_fields(forged))
        session.add(forged)
        session.commit()
    assert verify_chains(ctx.engine)["audit"] == (
        6,
        [ChainProblem(7, "entry beyond the chain head")],
    )


def test_verify_while_appending_reports_nothing(ctx: Context, clock: FrozenClock) -> None:
    """The worker audits all the time: a verify running meanwhile must not cry wolf."""
    _seed(ctx, clock, events=1)
    stop = threading.Event()
    errors: list[BaseException] = []

    def append() -> None:
        try:
            while not stop.is_set():
                with write_session(ctx.engine) as session:
                    append_audit(session, at=clock.now(), operator="worker", action="send.batch")
                time.sleep(0.0005)
        except BaseException as exc:  # pragma: no cover - reported below
            errors.append(exc)

    thread = threading.Thread(target=append)
    thread.start()
    try:
        for _ in range(25):
            count, problems = verify_chains(ctx.engine)["audit"]
            assert problems == []
    finally:
        stop.set()
        thread.join()
    assert errors == []
    count, problems = verify_chains(ctx.engine)["audit"]
    assert problems == [] and count > 2


@pytest.mark.parametrize("threads", [2, 4])
def test_concurrent_appends_keep_one_chain(ctx: Context, clock: FrozenClock, threads: int) -> None:
    """Writers in several threads, each with its own sessions, on a fresh chain head.

    On PostgreSQL the first appends race for a chain_head row that does not exist
    yet; afterwards the row lock makes them queue. On SQLite BEGIN IMMEDIATE does.
    """
    contacts = []
    with write_session(ctx.engine) as session:
        session.execute(text("DELETE FROM chain_head"))
    for i in range(threads):
        # Raw inserts: no audit entry, so both chains start from nothing.
        with write_session(ctx.engine) as session:
            contact = Contact(
                number=f"+3361234560{i}", created_at=clock.now(), updated_at=clock.now()
            )
            session.add(contact)
            session.flush()
            assert contact.id is not None
            contacts.append(contact.id)
    per_thread = 15
    barrier = threading.Barrier(threads)
    errors: list[BaseException] = []

    def run(contact_id: int) -> None:
        try:
            barrier.wait()
            for i in range(per_thread):
                record_consent(
                    ctx,
                    ConsentRequest(
                        contact_id, "infos", "grant" if i % 2 == 0 else "withdraw", "counter"
                    ),
                )
        except BaseException as exc:
            errors.append(exc)

    workers = [threading.Thread(target=run, args=(cid,)) for cid in contacts]
    for worker in workers:
        worker.start()
    for worker in workers:
        worker.join()
    assert errors == []

    total = threads * per_thread
    assert verify_chains(ctx.engine) == {"audit": (total, []), "consent": (total, [])}
    with Session(ctx.engine) as session:
        seqs = session.exec(select(ConsentEvent.seq).order_by(col(ConsentEvent.seq))).all()
        per_contact = {
            cid: len(
                session.exec(select(ConsentEvent).where(col(ConsentEvent.contact_id) == cid)).all()
            )
            for cid in contacts
        }
    assert list(seqs) == list(range(1, total + 1))
    assert per_contact == dict.fromkeys(contacts, per_thread)
