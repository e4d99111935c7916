"""Contact queries that page with keysets, so no view ever loads the whole base."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

from sqlalchemy import ColumnElement, Select, and_, exists, false, func, or_, select, tuple_
from sqlmodel import Session

from storage.models import ConsentState, Contact, ContactGroup


@dataclass(frozen=True)
class ContactQuery:
    """A filter on live (not erased) contacts; text fields are already folded."""

    text: str = ""
    number_patterns: tuple[str, ...] = ()
    zone: str | None = None
    group: str | None = None
    topic: str | None = None
    consent: bool | None = None
    topic_is_public_safety: bool = False
    sendable: bool | None = None


@dataclass(frozen=True)
class Cursor:
    sort_key: str
    id: int


@dataclass(frozen=True)
class ContactRow:
    id: int
    name: str
    number: str | None
    number_kind: str
    sendable: bool
    zone: str
    groups: str
    consents: dict[str, bool]
    name_key: str

    @property
    def cursor(self) -> Cursor:
        return Cursor(self.name_key, self.id)


def _escape_like(value: str) -> str:
    return value.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_")


def _conditions(query: ContactQuery) -> list[ColumnElement[bool]]:
    col: Any = Contact
    conds: list[ColumnElement[bool]] = [col.erased_at.is_(None)]
    matches: list[ColumnElement[bool]] = []
    if query.text:
        matches.append(col.search_key.like(f"%{_escape_like(query.text)}%", escape="\\"))
    matches.extend(col.number.like(pattern, escape="\\") for pattern in query.number_patterns)
    if matches:
        conds.append(or_(*matches))
    if query.zone is not None:
        conds.append(col.zone == query.zone)
    if query.group is not None:
        conds.append(
            exists().where(ContactGroup.contact_id == col.id, ContactGroup.name == query.group)  # type: ignore[arg-type]
        )
    if query.sendable is not None:
        conds.append(col.sendable.is_(query.sendable))
    if query.topic is not None and query.consent is not None:
        conds.append(_consent_condition(query.topic, query.consent, query.topic_is_public_safety))
    return conds


def _consent_condition(topic: str, wanted: bool, public_safety: bool) -> ColumnElement[bool]:
    state: Any = ConsentState
    col: Any = Contact
    if public_safety:
        # Reached unless they withdrew.
        opted_out = exists().where(
            state.contact_id == col.id, state.topic == topic, state.granted.is_(false())
        )
        return ~opted_out if wanted else opted_out
    opted_in = exists().where(
        state.contact_id == col.id, state.topic == topic, state.granted.is_(True)
    )
    return opted_in if wanted else ~opted_in


def _base(query: ContactQuery) -> Select[Any]:
    col: Any = Contact
    return select(
        col.id,
        col.name,
        col.number,
        col.number_kind,
        col.sendable,
        col.zone,
        col.groups,
        col.sort_key,
    ).where(and_(*_conditions(query)))


def page_contacts(
    session: Session, query: ContactQuery, *, after: Cursor | None = None, limit: int = 200
) -> list[ContactRow]:
    col: Any = Contact
    stmt = _base(query)
    if after is not None:
        stmt = stmt.where(tuple_(col.sort_key, col.id) > tuple_(after.sort_key, after.id))
    stmt = stmt.order_by(col.sort_key, col.id).limit(limit)
    rows = session.execute(stmt).all()
    consents = consents_for(session, [row.id for row in rows])
    return [
        ContactRow(
            id=row.id,
            name=row.name,
            number=row.number,
            number_kind=row.number_kind,
            sendable=row.sendable,
            zone=row.zone,
            groups=row.groups,
            consents=consents.get(row.id, {}),
            name_key=row.sort_key,
        )
        for row in rows
    ]


def consents_for(session: Session, ids: Sequence[int]) -> dict[int, dict[str, bool]]:
    if not ids:
        return {}
    state: Any = ConsentState
    found: dict[int, dict[str, bool]] = {}
    for contact_id, topic, granted in session.execute(
        select(state.contact_id, state.topic, state.granted).where(state.contact_id.in_(ids))
    ):
        found.setdefault(contact_id, {})[topic] = granted
    return found


def count_contacts(session: Session, query: ContactQuery) -> int:
    col: Any = Contact
    stmt = select(func.count(col.id)).where(and_(*_conditions(query)))
    return int(session.execute(stmt).scalar_one())


def zones(session: Session) -> list[str]:
    col: Any = Contact
    stmt = (
        select(col.zone)
        .where(col.erased_at.is_(None), col.zone != "")
        .group_by(col.zone)
        .order_by(col.zone)
    )
    return [row[0] for row in session.execute(stmt)]


def group_names(session: Session) -> list[str]:
    grp: Any = ContactGroup
    return [
        row[0] for row in session.execute(select(grp.name).group_by(grp.name).order_by(grp.name))
    ]
