"""The contact service: validation, duplicates, erasure, search and keyset paging."""

from __future__ import annotations

import itertools
import json
from dataclasses import replace
from datetime import timedelta

import pytest
from sqlalchemy import Engine, func
from sqlmodel import Session, col, select

from console.clock import FrozenClock
from console.config import Config
from console.consent.ledger import ConsentRequest, record_consent
from console.consent.suppression import number_hash
from console.contacts.rules import ContactError, normalise_groups, split_groups
from console.contacts.service import (
    ContactInput,
    add_contact,
    build_query,
    erase_contact,
    find_by_number,
    get_contact,
    is_suppressed,
    update_contact,
)
from console.context import Context
from console.roles import PermissionDenied, Role
from storage.engine import read_session
from storage.models import (
    AuditEntry,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactGroup,
    Suppression,
)
from storage.queries import ContactQuery, count_contacts, group_names, page_contacts, zones
from tests.conftest import TEST_KEY, make_context

ELODIE = ContactInput(
    number="06 12 34 56 78",
    name="Élodie Garçon",
    zone="Les Prés",
    groups=("Parents", "seniors"),
    notes="Sonner deux fois",
)


def _add(ctx: Context, data: ContactInput = ELODIE) -> int:
    contact = add_contact(ctx, data)
    assert contact.id is not None
    return contact.id


def _rows(engine: Engine, model: type[Contact] | type[ContactGroup]) -> list[object]:
    with Session(engine) as session:
        return list(session.exec(select(model)).all())


def _groups_of(engine: Engine, contact_id: int) -> list[str]:
    with Session(engine) as session:
        return sorted(
            session.exec(
                select(ContactGroup.name).where(col(ContactGroup.contact_id) == contact_id)
            ).all()
        )


def _audit(engine: Engine) -> list[AuditEntry]:
    with Session(engine) as session:
        return list(session.exec(select(AuditEntry).order_by(col(AuditEntry.seq))).all())


# --- add ---------------------------------------------------------------------------------


def test_add_stores_the_normalised_contact(ctx: Context, clock: FrozenClock) -> None:
    cid = _add(ctx)
    with Session(ctx.engine) as session:
        row = session.get(Contact, cid)
    assert row is not None
    assert (row.number, row.number_kind, row.sendable) == ("+33612345678", "mobile", True)
    assert (row.name, row.zone, row.groups, row.notes) == (
        "Élodie Garçon",
        "Les Prés",
        "parents,seniors",
        "Sonner deux fois",
    )
    assert (row.sort_key, row.search_key) == ("elodie garcon", "elodie garcon les pres")
    assert (row.source, row.created_at, row.updated_at, row.erased_at) == (
        "console",
        clock.now(),
        clock.now(),
        None,
    )
    assert _groups_of(ctx.engine, cid) == ["parents", "seniors"]
    [entry] = _audit(ctx.engine)
    assert (entry.action, entry.target, entry.operator, json.loads(entry.details)) == (
        "contact.add",
        f"contact:{cid}",
        "secretariat",
        {"source": "console"},
    )


def test_landline_is_stored_not_sendable(ctx: Context) -> None:
    cid = _add(ctx, ContactInput(number="01 42 76 40 40", name="Mairie annexe"))
    contact = get_contact(ctx, cid)
    assert (contact.number, contact.number_kind, contact.sendable) == (
        "+33142764040",
        "fixed_line",
        False,
    )


@pytest.mark.parametrize("number", ["06 12", "abc", "", "0700000000", "6,12E+08"])
def test_bad_number_names_the_number_field(ctx: Context, number: str) -> None:
    with pytest.raises(ContactError) as raised:
        add_contact(ctx, ContactInput(number=number, name="X"))
    assert raised.value.field == "number"
    assert _rows(ctx.engine, Contact) == []
    assert _audit(ctx.engine) == []


@pytest.mark.parametrize(
    ("data", "field"),
    [
        (ContactInput(number="0612345678", name="x" * 201), "name"),
        (ContactInput(number="0612345678", zone="z" * 101), "zone"),
        (ContactInput(number="0612345678", notes="n" * 2001), "notes"),
    ],
)
def test_too_long_fields(ctx: Context, data: ContactInput, field: str) -> None:
    with pytest.raises(ContactError) as raised:
        add_contact(ctx, data)
    assert raised.value.field == field
    assert _rows(ctx.engine, Contact) == []


def test_typed_text_is_kept_as_typed(ctx: Context) -> None:
    cid = _add(
        ctx,
        ContactInput(
            number=" 06 12 34 56 78 ",
            name="  Xavier \x1b[31mRouge\x1b[0m ",
            zone="\x00Le Moulin",
            notes="ligne un\nligne deux",
        ),
    )
    contact = get_contact(ctx, cid)
    # Escape sequences are kept (the console shows them escaped); NUL cannot be stored.
    assert (contact.name, contact.zone, contact.notes) == (
        "Xavier \x1b[31mRouge\x1b[0m",
        "Le Moulin",
        "ligne un ligne deux",
    )


@pytest.mark.parametrize(
    "again",
    ["+33 6 12 34 56 78", "0033612345678", "06.12.34.56.78", "612345678", "+33 (0)6 12 34 56 78"],
)
def test_same_person_in_another_format_is_a_duplicate(ctx: Context, again: str) -> None:
    first = _add(ctx)
    with pytest.raises(ContactError) as raised:
        add_contact(ctx, ContactInput(number=again, name="Elodie GARCON"))
    assert raised.value.field == "number"
    assert f"already contact #{first}" in str(raised.value)
    assert len(_rows(ctx.engine, Contact)) == 1


def test_viewer_cannot_add(engine: Engine, config: Config, clock: FrozenClock) -> None:
    viewer = make_context(engine, config, clock, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        add_contact(viewer, ELODIE)
    assert _rows(engine, Contact) == []


# --- groups ------------------------------------------------------------------------------


def test_groups_normalisation() -> None:
    assert normalise_groups(["Parents", " parents ", "SENIORS", "", "  ", "Élus"]) == (
        "parents",
        "seniors",
        "élus",
    )
    assert normalise_groups([]) == ()
    assert normalise_groups(["g" * 150]) == ("g" * 100,)
    assert split_groups("Parents; seniors|Élus, ,parents") == ("parents", "seniors", "élus")
    assert split_groups("") == ()


def test_groups_rows_follow_the_contact(ctx: Context) -> None:
    cid = _add(ctx, ContactInput(number="0612345678", groups=("B", "a", "b", " A ")))
    assert get_contact(ctx, cid).groups == "a,b"
    assert _groups_of(ctx.engine, cid) == ["a", "b"]
    update_contact(ctx, cid, ContactInput(number="0612345678", groups=("c",)))
    assert get_contact(ctx, cid).groups == "c"
    assert _groups_of(ctx.engine, cid) == ["c"]
    with read_session(ctx.engine) as session:
        assert group_names(session) == ["c"]


# --- update ------------------------------------------------------------------------------


def test_update(ctx: Context, clock: FrozenClock) -> None:
    cid = _add(ctx)
    clock.advance(timedelta(hours=1))
    updated = update_contact(
        ctx,
        cid,
        ContactInput(
            number="+33 7 81 23 45 67", name="Élodie Martin", zone="La Gare", groups=("parents",)
        ),
    )
    assert (updated.number, updated.name, updated.zone, updated.groups, updated.notes) == (
        "+33781234567",
        "Élodie Martin",
        "La Gare",
        "parents",
        "",
    )
    stored = get_contact(ctx, cid)
    assert (stored.number, stored.sort_key, stored.search_key, stored.updated_at) == (
        "+33781234567",
        "elodie martin",
        "elodie martin la gare",
        clock.now(),
    )
    assert stored.created_at == clock.now() - timedelta(hours=1)
    edit = _audit(ctx.engine)[-1]
    assert (edit.action, edit.target) == ("contact.edit", f"contact:{cid}")
    assert json.loads(edit.details) == {"fields": ["groups", "name", "notes", "number", "zone"]}
    # The old number is free again.
    assert find_by_number(ctx, "06 12 34 56 78") is None
    found = find_by_number(ctx, "07 81 23 45 67")
    assert found is not None and found.id == cid


def test_update_without_change_writes_nothing(ctx: Context, clock: FrozenClock) -> None:
    cid = _add(ctx)
    clock.advance(timedelta(hours=1))
    update_contact(ctx, cid, replace(ELODIE, number="+33612345678", groups=("seniors", "PARENTS")))
    assert len(_audit(ctx.engine)) == 1
    assert get_contact(ctx, cid).updated_at == clock.now() - timedelta(hours=1)


def test_update_to_a_number_held_by_another(ctx: Context) -> None:
    first = _add(ctx)
    second = _add(ctx, ContactInput(number="07 81 23 45 67", name="Hugo"))
    with pytest.raises(ContactError) as raised:
        update_contact(ctx, second, ContactInput(number="+33612345678", name="Hugo"))
    assert raised.value.field == "number"
    assert f"already contact #{first}" in str(raised.value)
    assert get_contact(ctx, second).number == "+33781234567"


def test_update_missing_contact(ctx: Context) -> None:
    with pytest.raises(ContactError, match="no contact #42"):
        update_contact(ctx, 42, ELODIE)


# --- erase -------------------------------------------------------------------------------


def test_erase_after_withdrawal(ctx: Context, clock: FrozenClock) -> None:
    cid = _add(ctx)
    record_consent(ctx, ConsentRequest(cid, "evenements", "grant", "paper_form"))
    record_consent(ctx, ConsentRequest(cid, "evenements", "withdraw", "sms_keyword"))
    clock.advance(timedelta(days=1))

    result = erase_contact(ctx, cid)

    assert (result.contact_id, result.suppressed) == (cid, True)
    with Session(ctx.engine) as session:
        row = session.get(Contact, cid)
        assert row is not None
        assert (row.number, row.name, row.zone, row.groups, row.notes) == (None, "", "", "", "")
        assert (row.sort_key, row.search_key, row.sendable, row.number_kind) == (
            "",
            "",
            False,
            "erased",
        )
        assert row.erased_at == row.updated_at == clock.now()
        events = session.exec(select(ConsentEvent)).all()
        states = session.exec(select(ConsentState)).all()
        suppressions = session.exec(select(Suppression)).all()
        assert is_suppressed(session, ctx, "+33612345678")
        assert not is_suppressed(session, ctx, "+33781234567")
    assert _groups_of(ctx.engine, cid) == []
    assert [(e.contact_id, e.action) for e in events] == [(cid, "grant"), (cid, "withdraw")]
    assert states == []
    assert [(s.number_hash, s.reason) for s in suppressions] == [
        (number_hash(TEST_KEY, "+33612345678"), "erasure")
    ]
    # The suppression list holds a keyed hash, never the number.
    assert "612345678" not in suppressions[0].number_hash
    erase = _audit(ctx.engine)[-1]
    assert (erase.action, erase.target, json.loads(erase.details)) == (
        "contact.erase",
        f"contact:{cid}",
        # The keyed hash (not the number): `audit verify` re-derives the list from it.
        {"suppressed": True, "number_hash": suppressions[0].number_hash},
    )
    with pytest.raises(ContactError):
        get_contact(ctx, cid)


def test_erase_without_withdrawal_keeps_no_hash(ctx: Context) -> None:
    cid = _add(ctx)
    record_consent(ctx, ConsentRequest(cid, "evenements", "grant", "paper_form"))
    result = erase_contact(ctx, cid)
    assert result.suppressed is False
    with Session(ctx.engine) as session:
        assert session.exec(select(Suppression)).all() == []
        assert len(session.exec(select(ConsentEvent)).all()) == 1
    assert json.loads(_audit(ctx.engine)[-1].details) == {"suppressed": False}


def test_erased_number_can_come_back(ctx: Context) -> None:
    cid = _add(ctx)
    erase_contact(ctx, cid)
    again = _add(ctx, ContactInput(number="+33612345678", name="Élodie"))
    assert again != cid
    found = find_by_number(ctx, "0612345678")
    assert found is not None and found.id == again


def test_erase_twice_and_erase_needs_admin(
    engine: Engine, config: Config, clock: FrozenClock, ctx: Context
) -> None:
    cid = _add(ctx)
    operator = make_context(engine, config, clock, role=Role.OPERATOR)
    with pytest.raises(PermissionDenied):
        erase_contact(operator, cid)
    assert get_contact(ctx, cid).name == "Élodie Garçon"
    erase_contact(ctx, cid)
    with pytest.raises(ContactError, match=f"no contact #{cid}"):
        erase_contact(ctx, cid)


def test_audit_names_contact_ids_only(ctx: Context) -> None:
    people = [
        ContactInput(
            number="06 12 34 56 78", name="Élodie Garçon", zone="Les Prés", notes="Sonner"
        ),
        ContactInput(
            number="07 81 23 45 67", name="Hugo Lefèvre", zone="La Gare", groups=("élus",)
        ),
    ]
    ids = [_add(ctx, person) for person in people]
    update_contact(
        ctx, ids[0], ContactInput(number="06 98 76 54 32", name="Élodie Martin", zone="Le Moulin")
    )
    record_consent(ctx, ConsentRequest(ids[1], "infos", "grant", "rented_list", proof_ref="LOC-9"))
    record_consent(ctx, ConsentRequest(ids[1], "infos", "withdraw", "sms_keyword"))
    erase_contact(ctx, ids[1])
    secrets = [
        "Élodie", "Garçon", "Martin", "Hugo", "Lefèvre", "Les Prés", "La Gare", "Le Moulin",
        "Sonner", "élus", "612345678", "781234567", "698765432", "12 34", "06 98",
    ]  # fmt: skip
    entries = _audit(ctx.engine)
    assert [e.action for e in entries] == [
        "contact.add",
        "contact.add",
        "contact.edit",
        "consent.grant",
        "consent.withdraw",
        "contact.erase",
    ]
    for entry in entries:
        assert entry.target in {f"contact:{i}" for i in ids}
        for secret in secrets:
            assert secret.lower() not in entry.details.lower(), (entry.action, secret)
            assert secret.lower() not in entry.target.lower()


# --- search ------------------------------------------------------------------------------


@pytest.fixture
def town(ctx: Context) -> dict[str, int]:
    people = {
        "elodie": ContactInput(
            number="06 12 34 56 78", name="Élodie Garçon", zone="Les Prés", groups=("parents",)
        ),
        "hugo": ContactInput(
            number="07 81 23 56 78", name="Hugo Lefèvre", zone="La Gare", groups=("élus", "parents")
        ),
        "zoe": ContactInput(number="+262 692 12 34 56", name="Zoé N'Diaye", zone="Les Prés"),
        "mairie": ContactInput(number="01 42 76 40 40", name="Mairie annexe", zone="La Gare"),
        "under": ContactInput(number="06 00 00 00 01", name="Jean_Marc 100%"),
    }
    ids = {key: _add(ctx, person) for key, person in people.items()}
    record_consent(ctx, ConsentRequest(ids["elodie"], "evenements", "grant", "paper_form"))
    record_consent(ctx, ConsentRequest(ids["hugo"], "evenements", "withdraw", "phone_call"))
    record_consent(ctx, ConsentRequest(ids["hugo"], "alertes", "withdraw", "sms_keyword"))
    return ids


def _search(ctx: Context, search: str, **filters: object) -> set[int]:
    query = build_query(ctx, search, **filters)  # type: ignore[arg-type]
    with read_session(ctx.engine) as session:
        found = {row.id for row in page_contacts(session, query, limit=1000)}
        assert count_contacts(session, query) == len(found)
    return found


def _named(town: dict[str, int], *keys: str) -> set[int]:
    return {town[key] for key in keys}


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("", ("elodie", "hugo", "zoe", "mairie", "under")),
        ("elodie", ("elodie",)),
        ("ÉLODIE", ("elodie",)),
        ("garcon", ("elodie",)),
        ("Garçon", ("elodie",)),
        ("  lefevre ", ("hugo",)),
        ("n'diaye", ("zoe",)),
        ("les pres", ("elodie", "zoe")),  # the zone is searched too
        ("gare", ("hugo", "mairie")),
        ("jean_marc", ("under",)),
        ("_", ("under",)),  # LIKE wildcards are literal
        ("100%", ("under",)),
        ("%", ("under",)),
        ("personne", ()),
    ],
)
def test_search_by_name(
    ctx: Context, town: dict[str, int], search: str, expected: tuple[str, ...]
) -> None:
    assert _search(ctx, search) == _named(town, *expected)


@pytest.mark.parametrize(
    ("search", "expected"),
    [
        ("06 12", ("elodie",)),
        ("0612", ("elodie",)),
        ("06.12.34", ("elodie",)),
        ("+33 6 12", ("elodie",)),
        ("+33612345678", ("elodie",)),
        ("0033612", ("elodie",)),
        ("0033 6 12 34 56 78", ("elodie",)),
        ("5678", ("elodie", "hugo")),
        ("56 78", ("elodie", "hugo")),
        ("0692 12", ("zoe",)),  # a national number reaches the overseas codes too
        ("+262", ("zoe",)),
        ("01 42", ("mairie",)),
        ("07", ("hugo",)),
        ("0", ("mairie", "under")),  # one digit: anywhere in the number or the name
        ("99 99", ()),
    ],
)
def test_search_by_number_in_any_format(
    ctx: Context, town: dict[str, int], search: str, expected: tuple[str, ...]
) -> None:
    assert _search(ctx, search) == _named(town, *expected)


def test_filters(ctx: Context, town: dict[str, int]) -> None:
    assert _search(ctx, "", zone="Les Prés") == _named(town, "elodie", "zoe")
    assert _search(ctx, "", zone="les prés") == set()  # zone filter is the exact value
    assert _search(ctx, "", group="parents") == _named(town, "elodie", "hugo")
    assert _search(ctx, "", group="élus") == _named(town, "hugo")
    assert _search(ctx, "", sendable=True) == _named(town, "elodie", "hugo", "zoe", "under")
    assert _search(ctx, "", sendable=False) == _named(town, "mairie")
    assert _search(ctx, "", topic="evenements", consent=True) == _named(town, "elodie")
    assert _search(ctx, "", topic="evenements", consent=False) == _named(
        town, "hugo", "zoe", "mairie", "under"
    )
    # Public safety: everyone but those who withdrew.
    assert _search(ctx, "", topic="alertes", consent=True, topic_is_public_safety=True) == _named(
        town, "elodie", "zoe", "mairie", "under"
    )
    assert _search(ctx, "", topic="alertes", consent=False, topic_is_public_safety=True) == _named(
        town, "hugo"
    )
    assert _search(ctx, "gare", group="parents", sendable=True) == _named(town, "hugo")
    assert _search(ctx, "06", zone="Les Prés", topic="evenements", consent=True) == _named(
        town, "elodie"
    )
    with read_session(ctx.engine) as session:
        assert zones(session) == ["La Gare", "Les Prés"]
        assert group_names(session) == ["parents", "élus"]


def test_erased_contacts_are_never_listed(ctx: Context, town: dict[str, int]) -> None:
    erase_contact(ctx, town["hugo"])
    assert _search(ctx, "") == _named(town, "elodie", "zoe", "mairie", "under")
    assert _search(ctx, "", group="élus") == set()
    with read_session(ctx.engine) as session:
        assert count_contacts(session, ContactQuery()) == 4
        assert zones(session) == ["La Gare", "Les Prés"]


def test_page_rows_carry_consents(ctx: Context, town: dict[str, int]) -> None:
    with read_session(ctx.engine) as session:
        rows = {row.id: row for row in page_contacts(session, ContactQuery())}
    hugo = rows[town["hugo"]]
    assert hugo.consents == {"evenements": False, "alertes": False}
    assert (hugo.name, hugo.number, hugo.zone, hugo.groups, hugo.sendable) == (
        "Hugo Lefèvre",
        "+33781235678",
        "La Gare",
        "parents,élus",
        True,
    )
    assert rows[town["elodie"]].consents == {"evenements": True}
    assert rows[town["zoe"]].consents == {}


# --- keyset paging -----------------------------------------------------------------------

FIRST = ("Élodie", "hugo", "Zoé", "Aïcha", "benoît", "Camille")
LAST = ("Garçon", "Martin", "lefèvre", "N'Diaye", "Ménard", "Dubois", "éponine")


@pytest.fixture
def many(ctx: Context) -> list[int]:
    ids = []
    for i in range(450):
        # Few distinct names: long runs of equal sort keys, ordered by id.
        name = f"{LAST[i % len(LAST)]} {FIRST[i % len(FIRST)]}" if i % 9 else ""
        ids.append(
            _add(
                ctx,
                ContactInput(
                    number=f"06 1{i:07d}",
                    name=name,
                    zone="Nord" if i % 2 else "Sud",
                    groups=("seniors",) if i % 3 == 0 else (),
                ),
            )
        )
    return ids


def _all_pages(ctx: Context, query: ContactQuery, limit: int) -> list[list[int]]:
    pages: list[list[int]] = []
    after = None
    with read_session(ctx.engine) as session:
        while True:
            rows = page_contacts(session, query, after=after, limit=limit)
            if not rows:
                return pages
            pages.append([row.id for row in rows])
            after = rows[-1].cursor


def test_keyset_paging_returns_everyone_once_in_order(ctx: Context, many: list[int]) -> None:
    pages = _all_pages(ctx, ContactQuery(), limit=200)
    assert [len(page) for page in pages] == [200, 200, 50]
    seen = [cid for page in pages for cid in page]
    assert len(seen) == len(set(seen)) == 450
    assert set(seen) == set(many)
    with Session(ctx.engine) as session:
        keys = {c.id: c.sort_key for c in session.exec(select(Contact))}
        unpaged = session.exec(
            select(Contact.id).order_by(col(Contact.sort_key), col(Contact.id))
        ).all()
    # Same order as one unpaged query, which is the folded name then the id.
    assert seen == list(unpaged)
    for before, after in itertools.pairwise(seen):
        assert keys[before] != keys[after] or before < after
    assert {keys[cid] for cid in seen[:50]} == {""}  # the 50 nameless contacts first
    assert keys[seen[-1]].startswith("n'diaye ")
    assert seen == sorted(many, key=lambda cid: (keys[cid], cid))  # C / binary collation


def test_filtered_paging_and_counts(ctx: Context, many: list[int]) -> None:
    query = build_query(ctx, "", zone="Nord")
    pages = _all_pages(ctx, query, limit=100)
    assert [len(page) for page in pages] == [100, 100, 25]
    seen = [cid for page in pages for cid in page]
    assert set(seen) == {cid for i, cid in enumerate(many) if i % 2}
    assert len(seen) == len(set(seen))
    with read_session(ctx.engine) as session:
        assert count_contacts(session, ContactQuery()) == 450
        assert count_contacts(session, ContactQuery(zone="Nord")) == 225
        assert count_contacts(session, ContactQuery(group="seniors")) == 150
        assert count_contacts(session, ContactQuery(zone="Sud", group="seniors")) == 75
        assert count_contacts(session, ContactQuery(sendable=True)) == 450
        assert count_contacts(session, build_query(ctx, "garcon")) == len(
            [i for i in range(450) if i % 9 and i % len(LAST) == 0]
        )


def test_count_with_consent_filters(ctx: Context, many: list[int]) -> None:
    for cid in many[:30]:
        record_consent(ctx, ConsentRequest(cid, "infos", "grant", "web_form"))
    for cid in many[20:25]:
        record_consent(ctx, ConsentRequest(cid, "infos", "withdraw", "sms_keyword"))
    for cid in many[:7]:
        record_consent(ctx, ConsentRequest(cid, "alertes", "withdraw", "sms_keyword"))
    erase_contact(ctx, many[0])
    with read_session(ctx.engine) as session:

        def count(**kwargs: object) -> int:
            return count_contacts(session, ContactQuery(**kwargs))  # type: ignore[arg-type]

        assert count(topic="infos", consent=True) == 24
        assert count(topic="infos", consent=False) == 449 - 24
        assert count(topic="alertes", consent=True, topic_is_public_safety=True) == 449 - 6
        assert count(topic="alertes", consent=False, topic_is_public_safety=True) == 6
        assert count(topic="infos", consent=True, zone="Nord") == len(
            [i for i in range(1, 30) if i % 2 and not 20 <= i < 25]
        )
        # A topic without a consent value filters nothing.
        assert count(topic="infos") == 449
    with Session(ctx.engine) as session:
        states = session.exec(
            select(func.count())
            .select_from(ConsentState)
            .where(col(ConsentState.contact_id) == many[0])
        ).one()
    assert states == 0
