"""The `tocsin` command as scripts and cron jobs use it: exit codes, messages, --json."""

from __future__ import annotations

import io
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, select

from console.cli import main
from console.roles import current_operator
from storage.engine import make_engine
from storage.models import ConsentState, Contact


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[town]\nname = "Testville"\n'
        f'[database]\nurl = "{db_url}"\n'
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n',
        encoding="utf-8",
    )
    return path


def run(config_file: Path, *args: str) -> int:
    return main(["--config", str(config_file), *args])


def test_bad_config_names_the_file_and_key(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path / "bad.toml"
    path.write_text('[town]\nregion = "XX"\n', encoding="utf-8")
    assert main(["--config", str(path), "audit", "verify"]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1
    assert err[0].startswith(f"tocsin: {path}: key 'town.region': expected 'FR'")


def test_missing_config_file_is_usage_error(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["--config", str(tmp_path / "nope.toml"), "audit", "verify"]) == 2
    assert "config file not found" in capsys.readouterr().err


def test_contact_add_edit_consent_erase(config_file: Path, db_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(config_file, "contact", "add", "06 12 34 56 78", "--name", "Élodie Garçon",
               "--zone", "Les Prés", "--groups", "seniors, Parents", "--json") == 0
    added = json.loads(capsys.readouterr().out)
    assert added["number"] == "+33612345678" and added["groups"] == ["parents", "seniors"]
    contact_id = added["id"]

    # The same person typed the other way is refused, with the reason.
    assert run(config_file, "contact", "add", "+33 (0)6 12 34 56 78") == 1
    assert f"is already contact #{contact_id}" in capsys.readouterr().err

    assert run(config_file, "contact", "edit", str(contact_id), "--zone", "La Gare") == 0
    capsys.readouterr()
    assert run(config_file, "consent", "grant", "0612345678", "--topic", "evenements",
               "--source", "paper_form", "--proof", "F-1", "--json") == 0
    granted = json.loads(capsys.readouterr().out)
    assert granted["contact_id"] == contact_id and granted["action"] == "grant"
    assert run(config_file, "consent", "withdraw", str(contact_id), "--topic", "evenements",
               "--source", "phone_call") == 0
    assert run(config_file, "consent", "grant", str(contact_id), "--topic", "nope",
               "--source", "paper_form") == 2

    engine = make_engine(db_url)
    with Session(engine) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.zone == "La Gare"
        state = session.get(ConsentState, (contact_id, "evenements"))
        assert state is not None and state.granted is False

    assert run(config_file, "contact", "erase", str(contact_id), "--yes", "--json") == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{"):]) == {
        "id": contact_id, "erased": True, "suppressed": True}
    with Session(engine) as session:
        erased = session.get(Contact, contact_id)
        assert erased is not None and erased.number is None and erased.name == ""
    engine.dispose()


def test_erase_without_yes_needs_the_typed_count(config_file: Path, monkeypatch,  # type: ignore[no-untyped-def]
                                                 capsys) -> None:
    assert run(config_file, "contact", "add", "0698765432", "--json") == 0
    contact_id = json.loads(capsys.readouterr().out)["id"]
    monkeypatch.setattr("sys.stdin", io.StringIO("2\n"))
    assert run(config_file, "contact", "erase", str(contact_id)) == 1
    assert "nothing done" in capsys.readouterr().err
    monkeypatch.setattr("sys.stdin", io.StringIO("1\n"))
    assert run(config_file, "contact", "erase", str(contact_id)) == 0


def test_import_json_report_and_rejects(config_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    csv_path = tmp_path / "habitants.csv"
    csv_path.write_bytes(
        "Nom;Téléphone;Quartier\r\n"
        "Léa Martin;06 12 34 56 78;Centre\r\n"
        "Bad Number;06 12;Centre\r\n"
        "Léa Martin bis;+33 6 12 34 56 78;Centre\r\n"
        "Mairie;01 42 76 40 40;Centre\r\n".encode("cp1252")
    )
    rejects = tmp_path / "rejets.csv"
    assert run(config_file, "import", "contacts", str(csv_path), "--json",
               "--rejects", str(rejects)) == 0
    report = json.loads(capsys.readouterr().out)
    assert report["encoding"] == "cp1252" and report["delimiter"] == ";"
    assert report["counts"] == {"rows": 4, "imported": 2, "updated": 0, "unchanged": 0,
                                "flagged": 1, "rejected": 2, "consents_recorded": 0}
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (3, "invalid_number"), (4, "duplicate")]
    assert "line 2" in report["rejected"][1]["reason"]
    assert rejects.read_text(encoding="utf-8").count("\n") == 3  # header + 2 rows

    # Same file again: nothing changes.
    assert run(config_file, "import", "contacts", str(csv_path), "--json") == 0
    again = json.loads(capsys.readouterr().out)
    assert again["counts"]["imported"] == 0 and again["counts"]["unchanged"] == 2


def test_import_unreadable_file_fails(config_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(config_file, "import", "contacts", str(tmp_path / "missing.csv")) == 1
    assert "missing.csv" in capsys.readouterr().err


def test_export_is_formula_safe(config_file: Path, tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(config_file, "contact", "add", "0611111111", "--name", "=HYPERLINK(1)") == 0
    out = tmp_path / "export.csv"
    assert run(config_file, "export", "contacts", "-o", str(out)) == 0
    content = out.read_text(encoding="utf-8-sig")
    assert "'=HYPERLINK(1)" in content


def test_audit_verify_detects_tampering(config_file: Path, db_url: str, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(config_file, "contact", "add", "0622222222") == 0
    assert run(config_file, "contact", "add", "0633333333") == 0
    capsys.readouterr()
    assert run(config_file, "audit", "verify", "--json") == 0
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is True and report["chains"]["audit"]["entries"] == 2

    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE audit_entry SET operator = 'intrus' WHERE seq = 1"))
    engine.dispose()
    assert run(config_file, "audit", "verify", "--json") == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    assert report["chains"]["audit"]["problems"][0]["seq"] == 1


def test_db_upgrade(config_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert run(config_file, "db", "upgrade") == 0
    from storage.migrate import head_revision

    assert f"database at schema {head_revision()} (head {head_revision()})" in (
        capsys.readouterr().out)


def test_demo_no_tui_builds_a_town(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["demo", "--dir", str(tmp_path / "town"), "--residents", "200",
                 "--no-tui"]) == 0
    url = capsys.readouterr().out.strip()
    engine = make_engine(url)
    with Session(engine) as session:
        contacts = session.exec(select(Contact)).all()
        consents = session.exec(select(ConsentState)).all()
    engine.dispose()
    assert len(contacts) == 200
    assert len({c.zone for c in contacts}) >= 6
    assert any(not c.sendable for c in contacts)
    assert len(consents) > 100
