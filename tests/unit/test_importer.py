"""Importing residents' CSV files: encodings, separators, headers, numbers, reports."""

from __future__ import annotations

import csv
import json
from pathlib import Path

import pytest
from sqlalchemy import Engine, func, select
from sqlmodel import col

import console.contacts.importer as importer
from console.audit import verify_chains
from console.clock import FrozenClock
from console.config import Config, TownConfig
from console.consent.ledger import ConsentRequest, record_consent
from console.consent.suppression import number_hash
from console.contacts.importer import ImportFailed, ImportOptions, contact_values, import_contacts
from console.contacts.importer.rows import FirstLines
from console.contacts.service import ContactInput, add_contact, apply, check, erase_contact
from console.context import Context
from console.roles import PermissionDenied, Role
from storage.engine import read_session, write_session
from storage.models import (
    AuditEntry,
    ConsentEvent,
    ConsentState,
    Contact,
    ContactGroup,
    Suppression,
)
from tests.conftest import FROZEN_AT, make_context

# --- helpers ------------------------------------------------------------------------


def write(tmp_path: Path, content: str | bytes, name: str = "habitants.csv") -> Path:
    path = tmp_path / name
    path.write_bytes(content.encode("utf-8") if isinstance(content, str) else content)
    return path


def crlf(*lines: str) -> str:
    return "".join(line + "\r\n" for line in lines)


def contacts(ctx: Context) -> dict[str, Contact]:
    with read_session(ctx.engine) as session:
        rows = session.execute(select(Contact).where(col(Contact.number).is_not(None)))
        return {c.number: c for c in rows.scalars() if c.number}


def groups_of(ctx: Context, contact_id: int | None) -> list[str]:
    with read_session(ctx.engine) as session:
        return sorted(
            session.execute(
                select(col(ContactGroup.name)).where(col(ContactGroup.contact_id) == contact_id)
            ).scalars()
        )


def count(ctx: Context, model: type[object], *where: object) -> int:
    with read_session(ctx.engine) as session:
        stmt = select(func.count()).select_from(model)
        for cond in where:
            stmt = stmt.where(cond)  # type: ignore[arg-type]
        return int(session.execute(stmt).scalar_one())


def audit_actions(ctx: Context) -> list[str]:
    with read_session(ctx.engine) as session:
        return list(
            session.execute(select(col(AuditEntry.action)).order_by(col(AuditEntry.seq))).scalars()
        )


def issues(report: importer.ImportReport) -> list[tuple[int, str, str]]:
    return [(i.line, i.status, i.code) for i in report.issues]


SIMPLE = crlf(
    "Nom;Prénom;Téléphone;Quartier;Groupes;Remarques",
    "GARÇON;Élodie;06 12 34 56 78;Les Prés;Parents, Aînés;portail vert",
    "Lefèvre;Noël;07 81 23 45 67;Centre;;",
)


# --- encodings ----------------------------------------------------------------------


def test_cp1252_file_with_accents(ctx: Context, tmp_path: Path) -> None:
    path = write(tmp_path, SIMPLE.encode("cp1252"))
    report = import_contacts(ctx, path, ImportOptions())
    assert report.encoding == "cp1252"
    assert (report.imported, report.rejected) == (2, 0)
    found = contacts(ctx)
    elodie = found["+33612345678"]
    assert elodie.name == "Élodie GARÇON"
    assert elodie.zone == "Les Prés"
    assert elodie.groups == "aînés,parents"
    assert elodie.notes == "portail vert"
    assert elodie.sort_key == "elodie garcon"
    assert elodie.search_key == "elodie garcon les pres"
    assert elodie.source == "import:habitants.csv"
    assert groups_of(ctx, elodie.id) == ["aînés", "parents"]
    assert found["+33781234567"].name == "Noël Lefèvre"


@pytest.mark.parametrize(
    ("prefix", "encoding"), [(b"", "utf-8"), (b"\xef\xbb\xbf", "utf-8-sig")], ids=["plain", "bom"]
)
def test_utf8_with_and_without_bom(
    ctx: Context, tmp_path: Path, prefix: bytes, encoding: str
) -> None:
    path = write(tmp_path, prefix + SIMPLE.encode("utf-8"))
    report = import_contacts(ctx, path, ImportOptions())
    assert report.encoding == encoding
    # The BOM must not stick to the first header and hide the "Nom" column.
    assert report.mapping["name"] == "Nom"
    assert contacts(ctx)["+33612345678"].name == "Élodie GARÇON"


def test_utf16_unicode_text_export(ctx: Context, tmp_path: Path) -> None:
    text = "Nom\tTéléphone\r\nÉlodie\t06 12 34 56 78\r\n"
    path = write(tmp_path, text.encode("utf-16"))
    report = import_contacts(ctx, path, ImportOptions())
    assert (report.encoding, report.delimiter, report.imported) == ("utf-16", "\t", 1)
    assert contacts(ctx)["+33612345678"].name == "Élodie"


def test_bad_encoding_row_is_rejected_and_the_others_import(ctx: Context, tmp_path: Path) -> None:
    data = (
        "Nom;Téléphone\r\n".encode("cp1252")
        + "Hélène;06 12 34 56 78\r\n".encode("cp1252")
        + b"Bad\x81name;06 12 34 56 79\r\n"  # 0x81 means nothing in Windows-1252
        + "Noël;06 12 34 56 80\r\n".encode("cp1252")
    )
    report = import_contacts(ctx, write(tmp_path, data), ImportOptions())
    assert report.encoding == "cp1252"
    assert issues(report) == [(3, "rejected", "bad_encoding")]
    assert report.issues[0].reason == "bad encoding"
    assert report.issues[0].raw == ["Bad\ufffdname", "06 12 34 56 79"]
    assert set(contacts(ctx)) == {"+33612345678", "+33612345680"}
    assert contacts(ctx)["+33612345680"].name == "Noël"


def test_utf8_line_pasted_into_a_cp1252_file(ctx: Context, tmp_path: Path) -> None:
    data = (
        "Nom;Téléphone\r\n".encode("cp1252")
        + "Hélène;06 12 34 56 78\r\n".encode("cp1252")
        + "Gaëlle;06 12 34 56 79\r\n".encode()
    )
    report = import_contacts(ctx, write(tmp_path, data), ImportOptions())
    assert report.rejected == 0
    assert {c.name for c in contacts(ctx).values()} == {"Hélène", "Gaëlle"}


# --- separators, quoting, line numbers ----------------------------------------------


@pytest.mark.parametrize("sep", [";", ",", "\t"], ids=["semicolon", "comma", "tab"])
def test_separators_are_detected(ctx: Context, tmp_path: Path, sep: str) -> None:
    text = crlf(
        sep.join(["Nom", "Téléphone", "Quartier"]),
        sep.join(["Élodie", "06 12 34 56 78", "Les Prés"]),
        sep.join(["Noël", "06 12 34 56 79", "Centre"]),
    )
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert report.delimiter == sep
    assert report.imported == 2
    assert contacts(ctx)["+33612345679"].zone == "Centre"


def test_quoted_fields_with_separators_and_newlines_keep_spreadsheet_line_numbers(
    ctx: Context, tmp_path: Path
) -> None:
    text = crlf(
        "Nom;Téléphone;Remarques",
        '"Dupont; Jean";06 12 34 56 78;"sonner deux fois',
        'chien méchant; ""attention"""',
        "Martin;06 12;",
        "",
        "Petit;06 12 34 56 79;",
    )
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    # The record on lines 2-3 counts as two lines, as Excel shows it; the blank
    # line 5 is skipped but still counted.
    assert issues(report) == [(4, "rejected", "invalid_number")]
    assert report.rows == 3
    dupont = contacts(ctx)["+33612345678"]
    assert dupont.name == "Dupont; Jean"
    # The cell holds the CR LF Excel wrote; the contact rules decide what stays of it.
    typed = 'sonner deux fois\r\nchien méchant; "attention"'
    assert dupont.notes == check(ctx, ContactInput(number="0612345678", notes=typed)).notes
    assert dupont.notes.startswith("sonner deux fois") and "\n" not in dupont.notes


def test_comma_file_with_quoted_commas(ctx: Context, tmp_path: Path) -> None:
    text = crlf("name,phone,groups", '"Garcia, Ana",+33 6 12 34 56 78,"parents, aînés"')
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert report.delimiter == ","
    ana = contacts(ctx)["+33612345678"]
    assert (ana.name, ana.groups) == ("Garcia, Ana", "aînés,parents")


# --- headers and mapping ------------------------------------------------------------


@pytest.mark.parametrize(
    ("header", "expected"),
    [
        (
            "NOM COMPLET;N° de téléphone;Secteur;Groupe;Commentaire",
            {"name": 0, "number": 1, "zone": 2, "groups": 3, "notes": 4},
        ),
        (
            "Name;Mobile;Zone;Groups;Notes",
            {"name": 0, "number": 1, "zone": 2, "groups": 3, "notes": 4},
        ),
        (
            "Nom;Tél.;quartier;GROUPES;Remarques",
            {"name": 0, "number": 1, "zone": 2, "groups": 3, "notes": 4},
        ),
        (
            "nom;portable;Quartier ;groups;notes",
            {"name": 0, "number": 1, "zone": 2, "groups": 3, "notes": 4},
        ),
        (
            "Full name;Phone;Area;Group;Comments",
            {"name": 0, "number": 1, "zone": 2, "groups": 3, "notes": 4},
        ),
    ],
)
def test_french_and_english_headers(
    ctx: Context, tmp_path: Path, header: str, expected: dict[str, int]
) -> None:
    text = crlf(header, "Élodie Garçon;06 12 34 56 78;Les Prés;parents|élus;RAS")
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    cells = header.split(";")
    assert report.mapping == {field: cells[i].strip() for field, i in expected.items()}
    elodie = contacts(ctx)["+33612345678"]
    assert (elodie.name, elodie.zone, elodie.groups, elodie.notes) == (
        "Élodie Garçon",
        "Les Prés",
        "parents,élus",
        "RAS",
    )


def test_mobile_column_preferred_over_landline(ctx: Context, tmp_path: Path) -> None:
    text = crlf("Nom;Téléphone fixe;Portable", "Élodie;01 42 68 53 00;06 12 34 56 78")
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert report.mapping["number"] == "Portable"
    assert set(contacts(ctx)) == {"+33612345678"}


def test_first_and_last_name_columns_are_joined(ctx: Context, tmp_path: Path) -> None:
    text = crlf(
        "Prénom;Nom;Téléphone",
        "Élodie;GARÇON;06 12 34 56 78",
        ";MARTIN;06 12 34 56 79",
        "Noël;;06 12 34 56 80",
    )
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert report.mapping == {"first_name": "Prénom", "name": "Nom", "number": "Téléphone"}
    names = {n: c.name for n, c in contacts(ctx).items()}
    assert names == {
        "+33612345678": "Élodie GARÇON",
        "+33612345679": "MARTIN",
        "+33612345680": "Noël",
    }


def test_mapping_override_by_header_and_by_column_number(ctx: Context, tmp_path: Path) -> None:
    text = crlf("Contact;Habitant;Lieu;Infos", "06 12 34 56 78;Élodie;Les Prés;à rappeler")
    path = write(tmp_path, text)
    with pytest.raises(ImportFailed, match="Contact, Habitant, Lieu, Infos"):
        import_contacts(ctx, path, ImportOptions())
    report = import_contacts(
        ctx, path, ImportOptions(mapping={"number": "1", "zone": "lieu", "notes": "Infos"})
    )
    assert report.mapping == {
        "number": "Contact",
        "name": "Habitant",
        "zone": "Lieu",
        "notes": "Infos",
    }
    elodie = contacts(ctx)["+33612345678"]
    assert (elodie.name, elodie.zone, elodie.notes) == ("Élodie", "Les Prés", "à rappeler")


def test_mapping_can_ignore_a_detected_column(ctx: Context, tmp_path: Path) -> None:
    text = crlf("Nom;Téléphone;Remarques", "Élodie;06 12 34 56 78;privé")
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions(mapping={"notes": ""}))
    assert "notes" not in report.mapping
    assert contacts(ctx)["+33612345678"].notes == ""


@pytest.mark.parametrize(
    ("mapping", "message"),
    [
        ({"number": "Portable"}, "no such column"),
        ({"number": "9"}, "the file has 2 columns"),
        ({"phone": "Téléphone"}, "unknown field"),
    ],
)
def test_bad_mapping_fails_clearly(
    ctx: Context, tmp_path: Path, mapping: dict[str, str], message: str
) -> None:
    path = write(tmp_path, crlf("Nom;Téléphone", "Élodie;06 12 34 56 78"))
    with pytest.raises(ImportFailed, match=message):
        import_contacts(ctx, path, ImportOptions(mapping=mapping))
    assert contacts(ctx) == {}


# --- numbers ------------------------------------------------------------------------

HABITS = [
    ("06 12 34 56 78", "+33612345678"),
    ("06.12.34.56.79", "+33612345679"),
    ("+33 6 12 34 56 80", "+33612345680"),
    ("+33 (0)6 12 34 56 81", "+33612345681"),
    ("0033 6 12 34 56 82", "+33612345682"),
    ("33 6 12 34 56 83", "+33612345683"),
    ("0612345684", "+33612345684"),
    ("612345685", "+33612345685"),  # a spreadsheet that dropped the 0
    ("06-12-34-56-86", "+33612345686"),
    ("0692 12 34 56", "+262692123456"),  # Réunion mobile
    ("+262 692 12 34 57", "+262692123457"),
    ("0696 12 34 56", "+596696123456"),  # Martinique mobile
]


def test_every_french_number_habit(ctx: Context, tmp_path: Path) -> None:
    lines = ["Nom;Téléphone"] + [f"R{i};{raw}" for i, (raw, _) in enumerate(HABITS)]
    report = import_contacts(ctx, write(tmp_path, crlf(*lines)), ImportOptions())
    assert report.issues == []
    found = contacts(ctx)
    for i, (_raw, e164) in enumerate(HABITS):
        assert found[e164].name == f"R{i}"
        assert found[e164].sendable


@pytest.mark.parametrize("region", ["FR", "RE"])
def test_overseas_and_metropolitan_numbers_in_either_town(
    engine: Engine, clock: FrozenClock, tmp_path: Path, region: str
) -> None:
    town = make_context(
        engine,
        Config(town=TownConfig(region=region)),  # type: ignore[arg-type]
        clock,
    )
    text = crlf(
        "Nom;Téléphone",
        "Réunion;0692 12 34 56",
        "Paris;06 12 34 56 78",
        "Saint-Denis fixe;0262 21 34 56",
        "Réunion sans zéro;692123457",
    )
    report = import_contacts(town, write(tmp_path, text), ImportOptions())
    found = contacts(town)
    assert {n: c.name for n, c in found.items()} == {
        "+262692123456": "Réunion",
        "+33612345678": "Paris",
        "+262262213456": "Saint-Denis fixe",
        "+262692123457": "Réunion sans zéro",
    }
    assert found["+262262213456"].number_kind == "fixed_line"
    assert issues(report) == [(4, "flagged", "not_mobile")]


def test_invalid_number_is_rejected_with_its_line(ctx: Context, tmp_path: Path) -> None:
    text = crlf(
        "Nom;Téléphone",
        "Élodie;06 12 34 56 78",
        "Jean;06 12 34",
        "Paul;pas de téléphone",
        "Anne;06 12 34 56 79",
    )
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert issues(report) == [(3, "rejected", "invalid_number"), (4, "rejected", "invalid_number")]
    assert report.issues[0].reason.startswith("invalid number: 06 12 34: ")
    assert report.issues[0].raw == ["Jean", "06 12 34"]
    assert (report.rows, report.imported, report.rejected) == (4, 2, 2)
    assert set(contacts(ctx)) == {"+33612345678", "+33612345679"}


def test_fixed_line_is_kept_but_flagged(ctx: Context, tmp_path: Path) -> None:
    text = crlf(
        "Nom;Téléphone", "Mairie;01 42 68 53 00", "Box;09 51 23 45 67", "Élodie;06 12 34 56 78"
    )
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert issues(report) == [(2, "flagged", "not_mobile"), (3, "flagged", "not_mobile")]
    assert report.issues[0].reason == "not a mobile"
    assert (report.imported, report.flagged, report.rejected) == (3, 2, 0)
    found = contacts(ctx)
    assert (found["+33142685300"].number_kind, found["+33142685300"].sendable) == (
        "fixed_line",
        False,
    )
    assert (found["+33951234567"].number_kind, found["+33951234567"].sendable) == ("voip", False)
    assert found["+33612345678"].sendable


def test_duplicate_in_another_format_names_the_first_line(ctx: Context, tmp_path: Path) -> None:
    text = crlf(
        "Nom;Téléphone",
        "Élodie;06 12 34 56 78",
        "Noël;06 12 34 56 79",
        "Élodie bis;+33 (0)6 12 34 56 78",
    )
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert issues(report) == [(4, "rejected", "duplicate")]
    assert report.issues[0].reason == "duplicate of line 2"
    assert contacts(ctx)["+33612345678"].name == "Élodie"


def test_each_duplicate_names_the_line_its_number_came_on_first(
    ctx: Context, tmp_path: Path
) -> None:
    text = crlf(
        "Nom;Téléphone",
        "A;06 12 34 56 78",
        "B;06 12 34 56 79",
        "C;0033 6 12 34 56 79",
        "D;06.12.34.56.78",
        "E;33 6 12 34 56 79",
    )
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert [(i.line, i.reason, i.reason_fr) for i in report.issues] == [
        (4, "duplicate of line 3", "doublon de la ligne 3"),
        (5, "duplicate of line 2", "doublon de la ligne 2"),
        (6, "duplicate of line 3", "doublon de la ligne 3"),
    ]
    assert report.imported == 2


def test_first_lines_keeps_the_first_line_of_each_number() -> None:
    seen = FirstLines()
    assert seen.add(33612345678, 2)
    assert seen.add(33612345679, 3)
    assert not seen.add(33612345678, 9)
    assert seen.first_lines({33612345678, 33612345679}) == {33612345678: 2, 33612345679: 3}
    assert seen.first_lines(set()) == {}


def test_missing_column_and_missing_number(ctx: Context, tmp_path: Path) -> None:
    text = crlf(
        "Nom;Quartier;Téléphone;Remarques",
        "Élodie;Les Prés;06 12 34 56 78;ok",
        "Jean;Centre",
        "Paul;Centre;;rien",
        "Anne;Centre;  ;rien",
        "Luc;Centre;06 12 34 56 79",  # notes cell missing: read as empty
    )
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert issues(report) == [
        (3, "rejected", "missing_column"),
        (4, "rejected", "missing_number"),
        (5, "rejected", "missing_number"),
    ]
    assert [i.reason for i in report.issues] == [
        "missing column",
        "missing number",
        "missing number",
    ]
    assert set(contacts(ctx)) == {"+33612345678", "+33612345679"}


def test_too_long_field_is_rejected_by_the_contact_rules(ctx: Context, tmp_path: Path) -> None:
    text = crlf("Nom;Téléphone;Quartier", f"{'x' * 201};06 12 34 56 78;", "Ok;06 12 34 56 79;")
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert issues(report) == [(2, "rejected", "invalid_field")]
    assert report.issues[0].reason == "name longer than 200 characters"
    assert set(contacts(ctx)) == {"+33612345679"}


# --- idempotence and updates ------------------------------------------------------


def test_reimport_changes_nothing(ctx: Context, tmp_path: Path) -> None:
    path = write(tmp_path, SIMPLE.encode("cp1252"))
    first = import_contacts(ctx, path, ImportOptions())
    assert first.imported == 2
    before = {n: (c.id, c.updated_at, c.name, c.groups) for n, c in contacts(ctx).items()}
    group_rows = count(ctx, ContactGroup)
    second = import_contacts(ctx, path, ImportOptions())
    assert (second.imported, second.updated, second.unchanged, second.rejected) == (0, 0, 2, 0)
    after = {n: (c.id, c.updated_at, c.name, c.groups) for n, c in contacts(ctx).items()}
    assert after == before
    assert count(ctx, ContactGroup) == group_rows
    assert audit_actions(ctx) == ["contact.import", "contact.import"]
    assert verify_chains(ctx.engine)["audit"] == (2, [])


def test_changed_fields_update_and_absent_columns_are_left_alone(
    ctx: Context, clock: FrozenClock, tmp_path: Path
) -> None:
    existing = add_contact(
        ctx,
        ContactInput(
            number="06 12 34 56 78",
            name="Élodie",
            zone="Les Prés",
            groups=("parents",),
            notes="clé chez la voisine",
            source="console",
        ),
    )
    other = add_contact(ctx, ContactInput(number="06 12 34 56 79", name="Noël"))
    text = crlf("Nom;Téléphone;Groupes", "Élodie Garçon;06.12.34.56.78;élus", "Noël;0612345679;")
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert (report.imported, report.updated, report.unchanged) == (0, 1, 1)
    found = contacts(ctx)
    elodie = found["+33612345678"]
    assert elodie.id == existing.id
    assert (elodie.name, elodie.groups) == ("Élodie Garçon", "élus")
    # No zone or notes column in the file: what the console holds stays.
    assert (elodie.zone, elodie.notes, elodie.source) == (
        "Les Prés",
        "clé chez la voisine",
        "console",
    )
    assert elodie.sort_key == "elodie garcon"
    assert elodie.search_key == "elodie garcon les pres"
    assert groups_of(ctx, elodie.id) == ["élus"]
    assert found["+33612345679"].id == other.id


def test_erased_contact_is_not_resurrected(ctx: Context, tmp_path: Path) -> None:
    gone = add_contact(ctx, ContactInput(number="06 12 34 56 78", name="Ancien"))
    erase_contact(ctx, gone.id or 0)
    report = import_contacts(
        ctx, write(tmp_path, crlf("Nom;Téléphone", "Nouveau;06 12 34 56 78")), ImportOptions()
    )
    assert report.imported == 1
    fresh = contacts(ctx)["+33612345678"]
    assert fresh.id != gone.id and fresh.name == "Nouveau"
    with read_session(ctx.engine) as session:
        erased = session.get(Contact, gone.id)
        assert erased is not None and erased.number is None and erased.name == ""


def test_many_chunks_and_existing_base_looked_up_by_number(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    # Small chunks run the worker thread several times; a base bigger than the
    # file makes the writer look numbers up chunk by chunk.
    monkeypatch.setattr(importer.rows, "CHUNK_ROWS", 3)
    monkeypatch.setattr(importer.writing, "CHUNK", 2)
    for i in range(12):
        add_contact(ctx, ContactInput(number=f"07 81 00 00 {i:02d}", name=f"Base {i}"))
    lines = ["Nom;Téléphone;Groupes"]
    lines += [f"Nouveau {i};06 12 34 56 {i:02d};g{i % 2}" for i in range(7)]
    lines += ["Base 0;07 81 00 00 00;", "Base 1 renommé;07 81 00 00 01;"]
    report = import_contacts(ctx, write(tmp_path, crlf(*lines)), ImportOptions())
    assert (report.imported, report.updated, report.unchanged) == (7, 1, 1)
    found = contacts(ctx)
    assert len(found) == 19
    assert found["+33781000001"].name == "Base 1 renommé"
    for i in range(7):
        assert groups_of(ctx, found[f"+336123456{i:02d}"].id) == [f"g{i % 2}"]


# --- consent ------------------------------------------------------------------------


def test_consent_is_recorded_once(ctx: Context, tmp_path: Path) -> None:
    already = add_contact(ctx, ContactInput(number="06 12 34 56 80", name="Déjà"))
    record_consent(
        ctx,
        ConsentRequest(
            contact_id=already.id or 0, topic="evenements", action="grant", source="counter"
        ),
    )
    text = crlf(
        "Nom;Téléphone",
        "Élodie;06 12 34 56 78",
        "Noël;06 12 34 56 79",
        "Déjà;06 12 34 56 80",
        "Faux;06 12",
    )
    path = write(tmp_path, text)
    options = ImportOptions(
        consent_topic="evenements",
        consent_source="paper_form",
        consent_proof="Formulaires fête 2026",
    )
    report = import_contacts(ctx, path, options)
    assert report.consents_recorded == 2
    with read_session(ctx.engine) as session:
        events = list(
            session.execute(select(ConsentEvent).order_by(col(ConsentEvent.seq))).scalars()
        )
        states = {s.contact_id: s for s in session.execute(select(ConsentState)).scalars().all()}
    found = contacts(ctx)
    granted = [e for e in events if e.source == "paper_form"]
    assert [e.contact_id for e in granted] == [found["+33612345678"].id, found["+33612345679"].id]
    assert all(e.proof_ref == "Formulaires fête 2026" for e in granted)
    assert all(e.text_version == "v1" and e.operator == "secretariat" for e in granted)
    assert all(e.occurred_at == FROZEN_AT for e in granted)
    for event in granted:
        assert states[event.contact_id].granted
        assert states[event.contact_id].event_id == event.id
    assert verify_chains(ctx.engine)["consent"] == (3, [])

    again = import_contacts(ctx, path, options)
    assert again.consents_recorded == 0
    assert (again.unchanged, again.imported) == (3, 0)
    assert count(ctx, ConsentEvent) == 3
    chains = verify_chains(ctx.engine)
    assert chains["consent"] == (3, [])
    assert chains["audit"][1] == []


def test_consent_not_recorded_for_stop_or_withdrawn(ctx: Context, tmp_path: Path) -> None:
    stopped = "+33612345678"
    with write_session(ctx.engine) as session:
        session.add(
            Suppression(
                number_hash=number_hash(ctx.hash_key, stopped), created_at=FROZEN_AT, reason="stop"
            )
        )
    withdrew = add_contact(ctx, ContactInput(number="06 12 34 56 79", name="Retrait"))
    record_consent(
        ctx,
        ConsentRequest(
            contact_id=withdrew.id or 0, topic="infos", action="withdraw", source="phone_call"
        ),
    )
    text = crlf("Nom;Téléphone", "Stop;06 12 34 56 78", "Retrait;06 12 34 56 79")
    report = import_contacts(
        ctx, write(tmp_path, text), ImportOptions(consent_topic="infos", consent_source="counter")
    )
    assert issues(report) == [(2, "flagged", "suppressed"), (3, "flagged", "withdrawn")]
    assert report.issues[0].reason == "on the suppression list (STOP): consent not recorded"
    assert (report.imported, report.unchanged, report.flagged, report.consents_recorded) == (
        1,
        1,
        2,
        0,
    )
    assert count(ctx, ConsentEvent, col(ConsentEvent.action) == "grant") == 0
    assert stopped in contacts(ctx)


@pytest.mark.parametrize(
    ("options", "message"),
    [
        (ImportOptions(consent_topic="meteo", consent_source="paper_form"), "unknown topic"),
        (ImportOptions(consent_topic="infos", consent_source="pigeon"), "unknown source"),
        (ImportOptions(consent_topic="infos", consent_source="rented_list"), "proof"),
        (
            ImportOptions(consent_topic="infos", consent_source="counter", consent_proof="x" * 501),
            "longer than 500",
        ),
    ],
)
def test_invalid_consent_request_fails_before_reading(
    ctx: Context, tmp_path: Path, options: ImportOptions, message: str
) -> None:
    with pytest.raises(ImportFailed, match=message):
        import_contacts(ctx, tmp_path / "does-not-exist.csv", options)


# --- report, rejects, dry run -------------------------------------------------------

MIXED = crlf(
    "Nom;Téléphone;Quartier",
    "Élodie;06 12 34 56 78;Les Prés",
    "Jean;06 12 34;Centre",
    "Mairie;01 42 68 53 00;Centre",
    "Élodie;06.12.34.56.78;Les Prés",
    "Sans numéro;;Centre",
)


def test_to_json_shape(ctx: Context, tmp_path: Path) -> None:
    report = import_contacts(ctx, write(tmp_path, MIXED), ImportOptions())
    data = report.to_json()
    assert json.loads(json.dumps(data)) == data
    assert data == {
        "file": str(tmp_path / "habitants.csv"),
        "encoding": "utf-8",
        "delimiter": ";",
        "dry_run": False,
        "mapping": {"name": "Nom", "number": "Téléphone", "zone": "Quartier"},
        "counts": {
            "rows": 5,
            "imported": 2,
            "updated": 0,
            "unchanged": 0,
            "flagged": 1,
            "rejected": 3,
            "consents_recorded": 0,
        },
        "rejected": [
            {"line": 3, "code": "invalid_number", "reason": data["rejected"][0]["reason"]},
            {"line": 5, "code": "duplicate", "reason": "duplicate of line 2"},
            {"line": 6, "code": "missing_number", "reason": "missing number"},
        ],
        "flagged": [{"line": 4, "code": "not_mobile", "reason": "not a mobile"}],
    }
    assert data["rejected"][0]["reason"].startswith("invalid number: 06 12 34")


def test_summary_lines_in_french_and_english(ctx: Context, tmp_path: Path) -> None:
    report = import_contacts(ctx, write(tmp_path, MIXED), ImportOptions())
    fr = report.summary_lines("fr")
    assert (
        fr[0] == "5 lignes lues : 2 importées, 0 mise à jour, 0 inchangée, 1 signalée, 3 rejetées"
    )
    assert fr[1].startswith("ligne 3 : numéro invalide (06 12 34 : ")
    assert "ligne 5 : doublon de la ligne 2" in fr
    en = report.summary_lines("en")
    assert en[0] == "5 rows read: 2 imported, 0 updated, 0 unchanged, 1 flagged, 3 rejected"
    assert "line 6: missing number" in en


def test_rejects_file_can_be_fixed_and_reimported(ctx: Context, tmp_path: Path) -> None:
    report = import_contacts(ctx, write(tmp_path, MIXED.encode("cp1252")), ImportOptions())
    rejects = tmp_path / "rejets.csv"
    assert report.write_rejects(rejects) == 3
    raw = rejects.read_bytes()
    assert raw.startswith(b"\xef\xbb\xbf")  # Excel needs the BOM to read UTF-8
    rows = list(csv.reader(raw.decode("utf-8-sig").splitlines(), delimiter=";"))
    assert rows[0] == ["line", "reason", "Nom", "Téléphone", "Quartier"]
    assert [r[0] for r in rows[1:]] == ["3", "5", "6"]
    assert rows[1][2:] == ["Jean", "06 12 34", "Centre"]
    assert rows[3][1] == "missing number"

    # The secretary fixes the numbers in Excel and imports the same file again.
    rows[1][3] = "06 12 34 56 90"
    rows[2][3] = "06 12 34 56 91"
    rows[3][3] = "06 12 34 56 92"
    with rejects.open("w", encoding="utf-8-sig", newline="") as handle:
        csv.writer(handle, delimiter=";").writerows(rows)
    fixed = import_contacts(ctx, rejects, ImportOptions())
    assert fixed.mapping == {"name": "Nom", "number": "Téléphone", "zone": "Quartier"}
    assert (fixed.imported, fixed.rejected) == (3, 0)
    found = contacts(ctx)
    assert found["+33612345690"].name == "Jean"
    assert found["+33612345692"].zone == "Centre"


def test_rejects_file_in_french(ctx: Context, tmp_path: Path) -> None:
    report = import_contacts(ctx, write(tmp_path, MIXED), ImportOptions())
    rejects = tmp_path / "rejets.csv"
    report.write_rejects(rejects, language="fr")
    text = rejects.read_text(encoding="utf-8-sig")
    assert "doublon de la ligne 2" in text


def test_dry_run_writes_nothing(ctx: Context, tmp_path: Path) -> None:
    add_contact(ctx, ContactInput(number="06 12 34 56 78", name="Ancienne"))
    before = audit_actions(ctx)
    report = import_contacts(
        ctx,
        write(tmp_path, MIXED),
        ImportOptions(dry_run=True, consent_topic="infos", consent_source="counter"),
    )
    assert report.dry_run
    assert (report.imported, report.updated, report.rejected) == (1, 1, 3)
    assert report.consents_recorded == 2
    assert report.summary_lines("fr")[0] == "Essai à blanc : rien n'a été enregistré."
    assert set(contacts(ctx)) == {"+33612345678"}
    assert contacts(ctx)["+33612345678"].name == "Ancienne"
    assert count(ctx, ConsentEvent) == 0
    assert audit_actions(ctx) == before


# --- failures -----------------------------------------------------------------------


def test_unreadable_files_fail_with_the_file_and_the_reason(
    ctx: Context, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    cases: list[tuple[Path, str]] = [
        (tmp_path / "absent.csv", "file not found"),
        (tmp_path, "is a directory"),
        (write(tmp_path, b"", "vide.csv"), "empty"),
        (write(tmp_path, b"\r\n\r\n", "blanc.csv"), "empty"),
        (write(tmp_path, crlf("Nom;Adresse", "Élodie;1 rue Haute"), "sans.csv"), "Nom, Adresse"),
        (write(tmp_path, crlf("Élodie;06 12 34 56 78"), "entete.csv"), "no header line"),
        (write(tmp_path, b"PK\x03\x04rest", "classeur.csv"), "not a CSV file"),
        # /dev/zero, a binary: one endless line is refused before it fills the memory.
        (write(tmp_path, b"nom;telephone\n" + b"\0" * 300_000, "zero.csv"), "line 2 is longer"),
        (write(tmp_path, b"a;b\n" + b"x" * 70_000 + b"\nc;d\n", "long.csv"), "line 2 is longer"),
    ]
    for path, reason in cases:
        with pytest.raises(ImportFailed) as failure:
            import_contacts(ctx, path, ImportOptions())
        assert str(path) in str(failure.value)
        assert reason in str(failure.value)
    locked = write(tmp_path, SIMPLE, "verrou.csv")

    def refuse(self: Path, *args: object, **kwargs: object) -> object:
        raise PermissionError(13, "Permission denied", str(self))

    # Tests may run as root, which reads any file: simulate the refusal.
    monkeypatch.setattr(Path, "open", refuse)
    with pytest.raises(ImportFailed, match="permission denied"):
        import_contacts(ctx, locked, ImportOptions())
    assert contacts(ctx) == {}
    assert audit_actions(ctx) == []


def test_no_number_column_message_lists_headers(ctx: Context, tmp_path: Path) -> None:
    path = write(tmp_path, crlf("Nom;Prénom;Adresse", "Garçon;Élodie;1 rue Haute"))
    with pytest.raises(ImportFailed) as failure:
        import_contacts(ctx, path, ImportOptions())
    message = str(failure.value)
    assert "no phone number column" in message
    assert "headers seen: Nom, Prénom, Adresse" in message


def test_unterminated_quote_names_the_line(ctx: Context, tmp_path: Path) -> None:
    field = "x" * 200_000  # beyond csv's field size limit
    path = write(tmp_path, f'Nom;Téléphone\r\nÉlodie;06 12 34 56 78\r\n"{field};1\r\n')
    with pytest.raises(ImportFailed, match="line 3"):
        import_contacts(ctx, path, ImportOptions())
    assert contacts(ctx) == {}


def test_viewer_may_not_import(
    engine: Engine, config: Config, clock: FrozenClock, tmp_path: Path
) -> None:
    viewer = make_context(engine, config, clock, role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        import_contacts(viewer, write(tmp_path, SIMPLE), ImportOptions())
    assert contacts(viewer) == {}


# --- consistency with console.contacts.service ---------------------------------------------


def test_exporter_guard_is_undone(ctx: Context, tmp_path: Path) -> None:
    text = crlf("Nom;Téléphone;Remarques", "'=HYPERLINK(1);06 12 34 56 78;'-- rien")
    import_contacts(ctx, write(tmp_path, text), ImportOptions())
    elodie = contacts(ctx)["+33612345678"]
    assert (elodie.name, elodie.notes) == ("=HYPERLINK(1)", "-- rien")


def test_contact_values_match_apply(ctx: Context) -> None:
    clean = check(
        ctx,
        ContactInput(
            number="06 12 34 56 78",
            name="  Œdipe  ÉLODIE\u00a0Garçon ",
            zone="Côte\tSaint-Jean",
            groups=("Élus", "parents", "élus"),
            notes="a\nb",
        ),
    )
    contact = Contact(created_at=FROZEN_AT, updated_at=FROZEN_AT)
    apply(contact, clean)
    values = contact_values(clean)
    assert values == {name: getattr(contact, name) for name in values}


def test_blank_and_whitespace_rows_are_skipped(ctx: Context, tmp_path: Path) -> None:
    text = crlf("Nom;Téléphone", ";", " ; ", "", ";  ", "Élodie;06 12 34 56 78")
    report = import_contacts(ctx, write(tmp_path, text), ImportOptions())
    assert (report.rows, report.imported, report.issues) == (1, 1, [])


def test_groups_and_consents_of_new_and_existing_contacts(ctx: Context, tmp_path: Path) -> None:
    existing = add_contact(ctx, ContactInput(number="06 12 34 56 79", name="Noël", zone="Z"))
    text = crlf(
        "Nom;Téléphone;Groupes",
        "Élodie;06 12 34 56 78;parents,élus",
        "Noël;06 12 34 56 79;aînés",
    )
    report = import_contacts(
        ctx, write(tmp_path, text), ImportOptions(consent_topic="infos", consent_source="counter")
    )
    assert (report.imported, report.updated, report.consents_recorded) == (1, 1, 2)
    found = contacts(ctx)
    assert groups_of(ctx, found["+33612345678"].id) == ["parents", "élus"]
    assert groups_of(ctx, existing.id) == ["aînés"]
    assert found["+33612345679"].zone == "Z"
    assert verify_chains(ctx.engine)["consent"] == (2, [])
    assert count(ctx, ConsentState, col(ConsentState.topic) == "infos") == 2
