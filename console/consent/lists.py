"""Rented and third-party lists: their provenance is recorded before any of their
rows import (provider, contract, when and on which wording the residents consented,
the topics covered, the SHA-256 of the provider's proof file), and their consents
lapse after a number of months.

A list's consents carry source `rented_list` and the proof `list:NAME sha256:HASH`;
when the list expires, `expire_lists` withdraws those still in force, with the
proof `expired:list:NAME` (run by `tocsin consent retention --apply`)."""

from __future__ import annotations

import calendar
import hashlib
import re
from dataclasses import dataclass
from datetime import datetime
from pathlib import Path
from typing import Any

from sqlalchemy import func, select

from console.audit import append_audit
from console.consent.ledger import ConsentRequest, append_consent
from console.context import Context
from console.errors import TocsinError
from console.roles import Role
from storage.engine import read_session, write_session
from storage.models import (
    ContactList,
    consent_event_table,
    consent_state_table,
    contact_table,
)

_NAME = re.compile(r"[A-Za-z0-9][A-Za-z0-9_.-]{0,63}")


class ListError(TocsinError):
    pass


def add_months(when: datetime, months: int) -> datetime:
    month0 = when.month - 1 + months
    year, month = when.year + month0 // 12, month0 % 12 + 1
    day = min(when.day, calendar.monthrange(year, month)[1])
    return when.replace(year=year, month=month, day=day)


def file_sha256(path: Path) -> str:
    digest = hashlib.sha256()
    with path.open("rb") as handle:
        for block in iter(lambda: handle.read(1 << 20), b""):
            digest.update(block)
    return digest.hexdigest()


@dataclass(frozen=True)
class ListInput:
    name: str
    provider: str
    contract_ref: str
    consented_at: datetime
    wording: str
    topics: tuple[str, ...]
    proof_file: Path
    expiry_months: int | None = None


def proof_ref(row: ContactList) -> str:
    return f"list:{row.name} sha256:{row.proof_sha256}"


def expires_at(row: ContactList) -> datetime:
    return add_months(row.consented_at, row.expiry_months)


def add_list(ctx: Context, data: ListInput) -> ContactList:
    ctx.require(Role.OPERATOR)
    if not _NAME.fullmatch(data.name):
        raise ListError(
            f"list name {data.name!r}: letters, digits, '.', '_' or '-' (64 at most)",
            "list_name",
            name=data.name,
        )
    for what, value, limit in (
        ("provider", data.provider, 200),
        ("contract reference", data.contract_ref, 200),
        ("wording", data.wording, 2000),
    ):
        if not value.strip():
            raise ListError(f"the list's {what} is required", "list_required", what=what)
        if len(value) > limit:
            raise ListError(f"the list's {what} is longer than {limit} characters", "list_long")
    if not data.topics:
        raise ListError("the list covers no topic", "list_required", what="topics")
    for topic in data.topics:
        if topic not in ctx.config.topics:
            raise ListError(
                f"unknown topic {topic!r} (known: {', '.join(ctx.topics)})",
                "consent_topic",
                topic=topic,
            )
    if data.consented_at.utcoffset() is None or data.consented_at > ctx.clock.now():
        raise ListError("the consent date must be a past date", "list_date")
    try:
        sha = file_sha256(data.proof_file)
    except OSError as exc:
        raise ListError(
            f"{data.proof_file}: cannot read the proof file: {exc.strerror or exc}",
            "list_proof",
            file=str(data.proof_file),
        ) from exc
    months = data.expiry_months or ctx.config.consent.list_expiry_months
    if not 1 <= months <= 120:
        raise ListError("expiry: 1 to 120 months", "list_expiry")
    now = ctx.clock.now()
    row = ContactList(
        name=data.name,
        provider=data.provider.strip(),
        contract_ref=data.contract_ref.strip(),
        consented_at=data.consented_at,
        wording=data.wording.strip(),
        topics=",".join(dict.fromkeys(data.topics)),
        proof_file=data.proof_file.name[:300],
        proof_sha256=sha,
        expiry_months=months,
        created_by=ctx.operator,
        created_at=now,
    )
    with write_session(ctx.engine) as session:
        if session.get(ContactList, data.name) is not None:
            raise ListError(f"list {data.name} is already registered", "list_exists")
        session.add(row)
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="list.add",
            target=f"list:{data.name}",
            details={
                "provider": row.provider,
                "contract_ref": row.contract_ref,
                "topics": row.topics.split(","),
                "proof_sha256": sha,
                "expiry_months": months,
            },
        )
        session.flush()
        session.expunge(row)
    return row


def get_list(ctx: Context, name: str) -> ContactList:
    with read_session(ctx.engine) as session:
        row = session.get(ContactList, name)
        if row is None:
            raise ListError(
                f"no list {name!r}: register its provenance first with `tocsin list add`",
                "list_unknown",
                name=name,
            )
        session.expunge(row)
        return row


@dataclass(frozen=True)
class ListSummary:
    row: ContactList
    residents: int  # imported with a consent from it
    in_force: int  # whose current consent still rests on it
    expires_at: datetime
    expired: bool

    def to_json(self) -> dict[str, Any]:
        row = self.row
        return {
            "name": row.name,
            "provider": row.provider,
            "contract_ref": row.contract_ref,
            "consented_at": row.consented_at.isoformat(),
            "wording": row.wording,
            "topics": row.topics.split(","),
            "proof_file": row.proof_file,
            "proof_sha256": row.proof_sha256,
            "expiry_months": row.expiry_months,
            "expires_at": self.expires_at.isoformat(),
            "expired": self.expired,
            "residents": self.residents,
            "in_force": self.in_force,
            "created_by": row.created_by,
            "created_at": row.created_at.isoformat(),
        }


def list_summaries(ctx: Context) -> list[ListSummary]:
    event = consent_event_table
    state = consent_state_table
    contact = contact_table
    now = ctx.clock.now()
    with read_session(ctx.engine) as session:
        rows = list(session.execute(select(ContactList).order_by(ContactList.name)).scalars())
        result = []
        for row in rows:
            ref = proof_ref(row)
            residents = session.execute(
                select(func.count(func.distinct(event.c.contact_id))).where(
                    event.c.source == "rented_list", event.c.proof_ref == ref
                )
            ).scalar_one()
            in_force = session.execute(
                select(func.count())
                .select_from(state)
                .join(event, event.c.id == state.c.event_id)
                .join(contact, contact.c.id == state.c.contact_id)
                .where(
                    state.c.granted.is_(True),
                    event.c.proof_ref == ref,
                    contact.c.erased_at.is_(None),
                )
            ).scalar_one()
            session.expunge(row)
            ends = expires_at(row)
            result.append(ListSummary(row, int(residents), int(in_force), ends, ends <= now))
    return result


def expire_lists(ctx: Context, *, apply: bool) -> dict[str, int]:
    """Per expired list, the consents still resting on it; withdrawn when `apply`."""
    ctx.require(Role.ADMIN if apply else Role.VIEWER)
    event = consent_event_table
    state = consent_state_table
    now = ctx.clock.now()
    due: dict[str, int] = {}
    with write_session(ctx.engine) as session:
        lists = list(session.execute(select(ContactList)).scalars())
        for row in lists:
            if expires_at(row) > now:
                continue
            pairs = session.execute(
                select(state.c.contact_id, state.c.topic)
                .join(event, event.c.id == state.c.event_id)
                .where(state.c.granted.is_(True), event.c.proof_ref == proof_ref(row))
                .order_by(state.c.contact_id, state.c.topic)
            ).all()
            due[row.name] = len(pairs)
            if not apply or not pairs:
                continue
            for contact_id, topic in pairs:
                append_consent(
                    session,
                    ctx,
                    ConsentRequest(
                        contact_id=contact_id,
                        topic=topic,
                        action="withdraw",
                        source="rented_list",
                        proof_ref=f"expired:list:{row.name}",
                    ),
                )
            append_audit(
                session,
                at=now,
                operator=ctx.operator,
                action="list.expire",
                target=f"list:{row.name}",
                details={"withdrawn": len(pairs)},
            )
    return due
