"""The contact base: add, edit, erase (RGPD) and search, independent of any UI."""

from __future__ import annotations

import re
from dataclasses import dataclass, field
from typing import TypedDict, Unpack

from sqlalchemy import delete, select, update
from sqlmodel import Session, col

from console.audit import append_audit
from console.consent.suppression import number_hash
from console.contacts.numbers import InvalidNumber, PhoneNumber
from console.contacts.rules import (
    CleanContact,
    ContactError,
    check_groups,
    check_name,
    check_notes,
    check_zone,
    groups_column,
    parse_number,
    search_key,
    sort_key,
)
from console.context import Context
from console.roles import Role
from console.text import clean_field, fold
from storage.engine import read_session, write_session
from storage.models import (
    ConsentEvent,
    ConsentState,
    Contact,
    ContactGroup,
    InboundMessage,
    Suppression,
)
from storage.queries import ContactQuery


@dataclass(frozen=True)
class ContactInput:
    number: str
    name: str = ""
    zone: str = ""
    groups: tuple[str, ...] = field(default_factory=tuple)
    notes: str = ""
    source: str = "console"


def check_number(ctx: Context, raw: str) -> PhoneNumber:
    return parse_number(ctx.parser, raw)


def check(ctx: Context, data: ContactInput) -> CleanContact:
    """Validate and normalise, raising ContactError that names the field."""
    number = check_number(ctx, data.number)
    name, zone, notes = check_name(data.name), check_zone(data.zone), check_notes(data.notes)
    groups = check_groups(data.groups)
    return CleanContact(number, name, zone, groups, notes, clean_field(data.source)[:100])


def apply(contact: Contact, clean: CleanContact) -> None:
    contact.number = clean.number.e164
    contact.number_kind = clean.number.kind
    contact.sendable = clean.number.sendable
    contact.name = clean.name
    contact.zone = clean.zone
    contact.groups = groups_column(clean.groups)
    contact.notes = clean.notes
    contact.source = contact.source or clean.source
    contact.sort_key = sort_key(clean.name)
    contact.search_key = search_key(clean.name, clean.zone)


def set_groups(session: Session, contact_id: int, groups: tuple[str, ...]) -> None:
    session.execute(delete(ContactGroup).where(col(ContactGroup.contact_id) == contact_id))
    for name in groups:
        session.add(ContactGroup(contact_id=contact_id, name=name))


def _holder(session: Session, e164: str) -> Contact | None:
    return session.execute(select(Contact).where(col(Contact.number) == e164)).scalar_one_or_none()


def add_contact(ctx: Context, data: ContactInput) -> Contact:
    ctx.require(Role.OPERATOR)
    clean = check(ctx, data)
    now = ctx.clock.now()
    with write_session(ctx.engine) as session:
        holder = _holder(session, clean.number.e164)
        if holder is not None:
            raise ContactError(
                f"{clean.number.e164} is already contact #{holder.id}",
                "number",
                "contact_duplicate",
                number=clean.number.e164,
                id=holder.id,
            )
        contact = Contact(created_at=now, updated_at=now, source=clean.source)
        apply(contact, clean)
        session.add(contact)
        session.flush()
        assert contact.id is not None
        set_groups(session, contact.id, clean.groups)
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="contact.add",
            target=f"contact:{contact.id}",
            details={"source": clean.source},
        )
    return contact


def update_contact(ctx: Context, contact_id: int, data: ContactInput) -> Contact:
    ctx.require(Role.OPERATOR)
    clean = check(ctx, data)
    now = ctx.clock.now()
    with write_session(ctx.engine) as session:
        contact = _live(session, contact_id)
        holder = _holder(session, clean.number.e164)
        if holder is not None and holder.id != contact_id:
            raise ContactError(
                f"{clean.number.e164} is already contact #{holder.id}",
                "number",
                "contact_duplicate",
                number=clean.number.e164,
                id=holder.id,
            )
        changed = sorted(
            name
            for name, old, new in (
                ("number", contact.number, clean.number.e164),
                ("name", contact.name, clean.name),
                ("zone", contact.zone, clean.zone),
                ("groups", contact.groups, groups_column(clean.groups)),
                ("notes", contact.notes, clean.notes),
            )
            if old != new
        )
        if not changed:
            return contact
        apply(contact, clean)
        contact.updated_at = now
        session.add(contact)
        set_groups(session, contact_id, clean.groups)
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="contact.edit",
            target=f"contact:{contact_id}",
            details={"fields": changed},
        )
    return contact


def _live(session: Session, contact_id: int) -> Contact:
    contact = session.get(Contact, contact_id)
    if contact is None or contact.erased_at is not None:
        raise ContactError(f"no contact #{contact_id}", code="no_contact", id=contact_id)
    return contact


def get_contact(ctx: Context, contact_id: int) -> Contact:
    with read_session(ctx.engine) as session:
        return _live(session, contact_id)


def find_by_number(ctx: Context, raw: str) -> Contact | None:
    try:
        e164 = ctx.parser.parse(raw).e164
    except InvalidNumber:
        return None
    with read_session(ctx.engine) as session:
        return _holder(session, e164)


@dataclass(frozen=True)
class ErasureResult:
    contact_id: int
    suppressed: bool


def erase_contact(ctx: Context, contact_id: int, *, reason: str = "") -> ErasureResult:
    """Wipe the personal fields; keep the consent history (by id) and a STOP as a hash.

    `reason` names why in the audit entry ("retention" for the retention run); the
    SMS they sent us lose their number and text too."""
    ctx.require(Role.ADMIN)
    now = ctx.clock.now()
    with write_session(ctx.engine) as session:
        contact = _live(session, contact_id)
        opted_out = (
            session.execute(
                select(col(ConsentEvent.id))
                .where(
                    col(ConsentEvent.contact_id) == contact_id,
                    col(ConsentEvent.action) == "withdraw",
                )
                .limit(1)
            ).first()
            is not None
        )
        suppressed = False
        details: dict[str, object] = {}
        if opted_out and contact.number:
            digest = number_hash(ctx.hash_key, contact.number)
            if session.get(Suppression, digest) is None:
                session.add(Suppression(number_hash=digest, created_at=now, reason="erasure"))
            suppressed = True
            # `audit verify` re-derives the suppression list from these entries.
            details["number_hash"] = digest
        contact.number = None
        contact.number_kind = "erased"
        contact.sendable = False
        contact.name = contact.zone = contact.groups = contact.notes = ""
        contact.sort_key = contact.search_key = ""
        contact.erased_at = contact.updated_at = now
        session.add(contact)
        set_groups(session, contact_id, ())
        session.execute(delete(ConsentState).where(col(ConsentState.contact_id) == contact_id))
        session.execute(
            update(InboundMessage)
            .where(col(InboundMessage.contact_id) == contact_id)
            .values(number="", text="")
        )
        if reason:
            details["reason"] = reason
        append_audit(
            session,
            at=now,
            operator=ctx.operator,
            action="contact.erase",
            target=f"contact:{contact_id}",
            details={"suppressed": suppressed, **details},
        )
    return ErasureResult(contact_id, suppressed)


def is_suppressed(session: Session, ctx: Context, e164: str) -> bool:
    return session.get(Suppression, number_hash(ctx.hash_key, e164)) is not None


_NUMBERISH = re.compile(r"^[+\d][\d\s.\-()]*$")


class QueryFilters(TypedDict, total=False):
    """The ContactQuery fields a caller may set besides the search text."""

    zone: str | None
    group: str | None
    topic: str | None
    consent: bool | None
    topic_is_public_safety: bool
    sendable: bool | None


def build_query(ctx: Context, search: str, **filters: Unpack[QueryFilters]) -> ContactQuery:
    """Turn what the operator typed after '/' into a query.

    Digits are matched against the stored E.164 number whatever the habit they
    were typed in: '06 12 34' finds +33612 34..., '5678' finds numbers ending so.
    """
    text = search.strip()
    patterns: tuple[str, ...] = ()
    folded = fold(text)
    if text and _NUMBERISH.match(text):
        digits = re.sub(r"\D", "", text)
        patterns = number_patterns(ctx, text, digits)
        if len(digits) >= 2:
            folded = ""  # a pure number never matches a name
    return ContactQuery(text=folded, number_patterns=patterns, **filters)


def number_patterns(ctx: Context, text: str, digits: str) -> tuple[str, ...]:
    if not digits:
        return ()
    if text.startswith("+"):
        return (f"+{digits}%",)
    if digits.startswith("00"):
        return (f"+{digits[2:]}%",)
    if digits.startswith("0") and len(digits) >= 2:
        national = digits[1:]
        return tuple(f"{code}{national}%" for code in ctx.parser.national_country_codes)
    return (f"%{digits}%",)
