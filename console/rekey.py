"""`tocsin audit rekey`: key the entries appended before the chains were keyed.

Migration 0008 had no key: the entries already in each chain kept their plain
SHA-256 links, which anyone can recompute. Run once by the admin (with the worker
stopped), this checks each chain as it stands, then re-links every entry by HMAC
from the first one, in one transaction holding both heads. It refuses a chain that
does not check out: re-hashing would launder the tampering. The audit entry it
appends keeps each chain's previous head, and the suppression entries no audit
entry names (STOPs recorded before the trail named their hash), as the baseline
`audit verify` compares the list against.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from dataclasses import dataclass
from typing import Any, TypeVar

from sqlalchemy import Table, bindparam, select, update
from sqlmodel import Session, col

from console.audit import (
    AUDIT_CHAIN,
    CONSENT_CHAIN,
    append_audit,
    audit_fields,
    consent_fields,
)
from console.consent.integrity import REKEY_ACTION, unexplained_suppressions
from console.context import Context
from console.errors import TocsinError
from console.roles import Role
from storage.chain import (
    GENESIS,
    ChainProblem,
    chain_key,
    link_mac,
    lock_head,
    read_head,
    set_head,
    verify_links,
)
from storage.engine import write_session
from storage.models import AuditEntry, ConsentEvent

_BATCH = 2000


class RekeyRefused(TocsinError):
    def __init__(self, chain: str, problems: list[ChainProblem]) -> None:
        first = "; ".join(f"#{p.seq}: {p.reason}" for p in problems[:3])
        super().__init__(
            f"the {chain} chain does not check out, nothing was re-keyed "
            f"({len(problems)} problem(s): {first}); run `tocsin audit verify`",
            "rekey_refused",
            chain=chain,
        )
        self.problems = problems


@dataclass(frozen=True)
class Rekeyed:
    chain: str
    entries: int
    previous_head: str  # SEQ:HASH before
    head: str  # SEQ:HASH after


_Chained = TypeVar("_Chained", AuditEntry, ConsentEvent)


def rekey_chains(ctx: Context) -> list[Rekeyed]:
    """Re-link both chains under the key; [] when both already are."""
    ctx.require(Role.ADMIN)
    done: list[Rekeyed] = []
    with write_session(ctx.engine) as session:
        # Both heads locked before anything is read: no append slips in between.
        for chain in (AUDIT_CHAIN, CONSENT_CHAIN):
            lock_head(session, chain)
        # The consent chain first: the audit chain's rekey entry closes both.
        for result in (
            _rekey(session, CONSENT_CHAIN, ConsentEvent, consent_fields),
            _rekey(session, AUDIT_CHAIN, AuditEntry, audit_fields),
        ):
            if result is not None:
                done.append(result)
        if done:
            append_audit(
                session,
                at=ctx.clock.now(),
                operator=ctx.operator,
                action=REKEY_ACTION,
                details={
                    "chains": {
                        r.chain: {"entries": r.entries, "previous_head": r.previous_head}
                        for r in done
                    },
                    "suppression_baseline": unexplained_suppressions(ctx.engine),
                },
            )
    return done


def _rekey(
    session: Session,
    chain: str,
    model: type[_Chained],
    fields: Callable[[_Chained], dict[str, Any]],
) -> Rekeyed | None:
    key = chain_key(session, chain)
    head = read_head(session, chain)
    if head is None or head.seq == 0:
        return None
    if head.keyed_from == 1 and head.authentic(key):
        return None
    if head.mac and not head.authentic(key):
        raise RekeyRefused(chain, [ChainProblem(head.seq, "the chain head does not match its key")])
    # Two passes over the rows, so a town's 500,000 consent events are never held
    # in memory at once: check them all, then re-link them.
    walk = verify_links(
        (
            (seq, prev, digest, content)
            for _, seq, prev, digest, content in _ordered(session, model, fields)
        ),
        key,
        keyed_from=head.keyed_from,
    )
    problems = walk.problems
    if walk.count != head.seq or (walk.count and walk.last_hash != head.last_hash):
        problems.append(ChainProblem(head.seq, f"head says {head.seq} entries, found {walk.count}"))
    if problems:
        raise RekeyRefused(chain, problems)
    table: Table = model.__table__  # type: ignore[attr-defined]
    statement = (
        update(table)
        .where(table.c.id == bindparam("row_id"))
        .values(prev_hash=bindparam("new_prev"), hash=bindparam("new_hash"))
    )
    prev = GENESIS
    batch: list[dict[str, Any]] = []
    for row_id, _seq, _prev, _digest, content in _ordered(session, model, fields):
        digest = link_mac(key, prev, content)
        batch.append({"row_id": row_id, "new_prev": prev, "new_hash": digest})
        prev = digest
        if len(batch) >= _BATCH:
            session.connection().execute(statement, batch)
            batch = []
    if batch:
        session.connection().execute(statement, batch)
    set_head(session, chain, head.seq, prev, keyed_from=1)
    return Rekeyed(chain, head.seq, f"{head.seq}:{head.last_hash}", f"{head.seq}:{prev}")


def _ordered(
    session: Session, model: type[_Chained], fields: Callable[[_Chained], dict[str, Any]]
) -> Iterator[tuple[int, int, str, str, dict[str, Any]]]:
    last = 0
    while True:
        batch = (
            session.execute(
                select(model).where(col(model.seq) > last).order_by(col(model.seq)).limit(5000)
            )
            .scalars()
            .all()
        )
        if not batch:
            return
        for row in batch:
            assert row.id is not None
            yield row.id, row.seq, row.prev_hash, row.hash, fields(row)
        session.expunge_all()
        last = batch[-1].seq
