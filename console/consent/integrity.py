"""What sending reads must follow from the chains: the current consent state and the
suppression list, re-derived from the events and compared.

Sending trusts `consent_state` and `suppression`, not the event log: a row edited
there (a STOP turned back into a grant, a suppressed number removed) would queue a
resident again while both chains still verify. These checks find it.

- `consent_state`: for each live contact and topic, the event with the latest
  `occurred_at` (the later one in the chain on a tie) decides, as `append_consent`
  does; the row must say the same and point at that event. Erased contacts have no
  rows.
- `suppression`: every STOP and every erasure that suppressed a number names the
  number's keyed hash in its audit entry; each must be on the list, and each entry
  of the list must come from one of them, or from the baseline `tocsin audit rekey`
  recorded of a list older than these audit details (which must stay on it too).
"""

from __future__ import annotations

import json
from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from sqlalchemy import Engine, and_, case, false, func, select, true
from sqlmodel import col

from storage.chain import ChainProblem
from storage.engine import read_session
from storage.models import (
    AuditEntry,
    Suppression,
    consent_event_table,
    consent_state_table,
    contact_table,
)

# Audit actions whose details may put a number on the suppression list.
SUPPRESSING_ACTIONS = ("inbound.stop", "contact.erase")
REKEY_ACTION = "audit.rekey"
# A mismatch is reported at most this many times per check, then counted.
MAX_REPORTED = 50


@dataclass(frozen=True)
class DerivedCheck:
    checked: int
    problems: list[ChainProblem]


def _capped(problems: list[ChainProblem], total: int, what: str) -> list[ChainProblem]:
    if total > len(problems):
        problems.append(ChainProblem(0, f"... and {total - len(problems)} more {what}"))
    return problems


def check_consent_state(engine: Engine) -> DerivedCheck:
    event, state, contact = (
        consent_event_table.c,
        consent_state_table.c,
        contact_table.c,
    )
    ranked = select(
        event.id,
        event.seq,
        event.contact_id,
        event.topic,
        event.action,
        func.row_number()
        .over(
            partition_by=(event.contact_id, event.topic),
            order_by=(event.occurred_at.desc(), event.seq.desc()),
        )
        .label("rank"),
    ).subquery()
    expected = (
        select(ranked)
        .join(contact_table, contact.id == ranked.c.contact_id)
        .where(ranked.c.rank == 1, contact.erased_at.is_(None))
        .subquery()
    )
    on = and_(state.contact_id == expected.c.contact_id, state.topic == expected.c.topic)
    granted = case((expected.c.action == "grant", true()), else_=false())
    differing = (
        select(
            expected.c.contact_id,
            expected.c.topic,
            expected.c.action,
            expected.c.seq,
            state.granted,
            state.contact_id.label("state_contact"),
        )
        .outerjoin(consent_state_table, on)
        .where(
            (state.contact_id.is_(None))
            | (state.event_id != expected.c.id)
            | (state.granted != granted)
        )
        .order_by(expected.c.seq)
    )
    unexplained = (
        select(state.contact_id, state.topic, state.granted)
        .outerjoin(expected, on)
        .where(expected.c.contact_id.is_(None))
        .order_by(state.contact_id, state.topic)
    )
    problems: list[ChainProblem] = []
    total = 0
    with read_session(engine) as session:
        checked = session.execute(
            select(func.count()).select_from(consent_state_table)
        ).scalar_one()
        for contact_id, topic, action, seq, is_granted, found in session.execute(differing):
            total += 1
            if len(problems) >= MAX_REPORTED:
                continue
            decided = "granted" if action == "grant" else "withdrawn"
            if found is None:
                says = "no current consent"
            else:
                says = "granted" if is_granted else "withdrawn"
                says = f"{says}, from another event" if says == decided else says
            problems.append(
                ChainProblem(
                    seq,
                    f"contact #{contact_id}, {topic}: the current consent says {says}, "
                    f"the ledger says {decided} (event {seq})",
                )
            )
        for contact_id, topic, is_granted in session.execute(unexplained):
            total += 1
            if len(problems) >= MAX_REPORTED:
                continue
            says = "granted" if is_granted else "withdrawn"
            problems.append(
                ChainProblem(
                    0,
                    f"contact #{contact_id}, {topic}: the current consent says {says}, "
                    "with no event in the ledger for it (or the contact is erased)",
                )
            )
    return DerivedCheck(int(checked), _capped(problems, total, "consent differences"))


def suppression_sources(engine: Engine) -> dict[str, int]:
    """The hashes the audit trail puts on the suppression list, each with the seq of
    the audit entry that did (the list never shrinks: nothing removes a STOP)."""
    required: dict[str, int] = {}
    actions = (*SUPPRESSING_ACTIONS, REKEY_ACTION)
    with read_session(engine) as session:
        rows = session.execute(
            select(col(AuditEntry.seq), col(AuditEntry.action), col(AuditEntry.details))
            .where(col(AuditEntry.action).in_(actions))
            .order_by(col(AuditEntry.seq))
        ).all()
    for seq, action, text in rows:
        details = _details(text)
        if action == REKEY_ACTION:
            for digest in _strings(details.get("suppression_baseline")):
                required.setdefault(digest, seq)
            continue
        named = details.get("number_hash")
        if details.get("suppressed") and isinstance(named, str) and named:
            required.setdefault(named, seq)
    return required


def _details(text: str) -> dict[str, Any]:
    try:
        loaded = json.loads(text or "{}")
    except ValueError:
        return {}
    return loaded if isinstance(loaded, dict) else {}


def _strings(value: Any) -> Iterable[str]:
    return (v for v in value if isinstance(v, str)) if isinstance(value, list) else ()


def suppression_hashes(engine: Engine) -> set[str]:
    with read_session(engine) as session:
        return set(session.execute(select(col(Suppression.number_hash))).scalars())


def check_suppression(engine: Engine) -> DerivedCheck:
    required = suppression_sources(engine)
    listed = suppression_hashes(engine)
    problems: list[ChainProblem] = []
    missing = sorted((seq, digest) for digest, seq in required.items() if digest not in listed)
    for seq, _digest in missing[:MAX_REPORTED]:
        problems.append(
            ChainProblem(
                seq,
                f"the number that said STOP (audit entry {seq}) is no longer on the "
                "suppression list",
            )
        )
    extra = sorted(listed - set(required))
    for digest in extra[: max(0, MAX_REPORTED - len(problems))]:
        problems.append(
            ChainProblem(
                0,
                f"suppression entry {digest[:12]}... follows from no STOP or erasure "
                "in the audit trail",
            )
        )
    total = len(missing) + len(extra)
    return DerivedCheck(len(listed), _capped(problems, total, "suppression differences"))


def unexplained_suppressions(engine: Engine) -> list[str]:
    """Entries of the list no audit entry names (lists older than those details)."""
    return sorted(suppression_hashes(engine) - set(suppression_sources(engine)))
