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
    assert (
        run(
            config_file,
            "contact",
            "add",
            "06 12 34 56 78",
            "--name",
            "Élodie Garçon",
            "--zone",
            "Les Prés",
            "--groups",
            "seniors, Parents",
            "--json",
        )
        == 0
    )
    added = json.loads(capsys.readouterr().out)
    assert added["number"] == "+33612345678" and added["groups"] == ["parents", "seniors"]
    contact_id = added["id"]

    # The same person typed the other way is refused, with the reason.
    assert run(config_file, "contact", "add", "+33 (0)6 12 34 56 78") == 1
    assert f"est déjà le contact #{contact_id}" in capsys.readouterr().err

    assert run(config_file, "contact", "edit", str(contact_id), "--zone", "La Gare") == 0
    capsys.readouterr()
    assert (
        run(
            config_file,
            "consent",
            "grant",
            "0612345678",
            "--topic",
            "evenements",
            "--source",
            "paper_form",
            "--proof",
            "F-1",
            "--json",
        )
        == 0
    )
    granted = json.loads(capsys.readouterr().out)
    assert granted["contact_id"] == contact_id and granted["action"] == "grant"
    assert (
        run(
            config_file,
            "consent",
            "withdraw",
            str(contact_id),
            "--topic",
            "evenements",
            "--source",
            "phone_call",
        )
        == 0
    )
    assert (
        run(
            config_file,
            "consent",
            "grant",
            str(contact_id),
            "--topic",
            "nope",
            "--source",
            "paper_form",
        )
        == 2
    )

    engine = make_engine(db_url)
    with Session(engine) as session:
        contact = session.get(Contact, contact_id)
        assert contact is not None and contact.zone == "La Gare"
        state = session.get(ConsentState, (contact_id, "evenements"))
        assert state is not None and state.granted is False

    assert run(config_file, "contact", "erase", str(contact_id), "--yes", "--json") == 0
    out = capsys.readouterr().out
    assert json.loads(out[out.index("{") :]) == {
        "id": contact_id,
        "erased": True,
        "suppressed": True,
    }
    with Session(engine) as session:
        erased = session.get(Contact, contact_id)
        assert erased is not None and erased.number is None and erased.name == ""
    engine.dispose()


def test_erase_without_yes_needs_the_typed_count(
    config_file: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
    capsys,
) -> None:
    assert run(config_file, "contact", "add", "0698765432", "--json") == 0
    contact_id = json.loads(capsys.readouterr().out)["id"]
    monkeypatch.setattr("sys.stdin", io.StringIO("2\n"))
    assert run(config_file, "contact", "erase", str(contact_id)) == 1
    assert "rien n'a été fait" in capsys.readouterr().err
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
    assert (
        run(config_file, "import", "contacts", str(csv_path), "--json", "--rejects", str(rejects))
        == 0
    )
    report = json.loads(capsys.readouterr().out)
    assert report["encoding"] == "cp1252" and report["delimiter"] == ";"
    assert report["counts"] == {
        "rows": 4,
        "imported": 2,
        "updated": 0,
        "unchanged": 0,
        "flagged": 1,
        "rejected": 2,
        "consents_recorded": 0,
    }
    assert [(r["line"], r["code"]) for r in report["rejected"]] == [
        (3, "invalid_number"),
        (4, "duplicate"),
    ]
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

    assert f"base de données au schéma {head_revision()} (dernier : {head_revision()})" in (
        capsys.readouterr().out
    )


def test_demo_no_tui_builds_a_town(tmp_path: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["demo", "--dir", str(tmp_path / "town"), "--residents", "200", "--no-tui"]) == 0
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


# ---- tocsin message check ----------------------------------------------------------


@pytest.fixture
def no_config(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """No config file anywhere, and a data dir that must stay empty (no database)."""
    import platformdirs

    import console.config as config_module

    data = tmp_path / "data"
    monkeypatch.delenv("TOCSIN_CONFIG", raising=False)
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG", tmp_path / "etc" / "config.toml")
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda *a, **k: str(tmp_path / "cfg"))
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *a, **k: str(data))
    return data


def test_message_check_human(no_config: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    text = "Fête du village «\u00a0samedi\u00a0» à {lieu}"
    assert main(["message", "check", text]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Caractères : 35",
        "Encodage : UCS-2",
        "Unités : 35 (70 par SMS)",
        "SMS : 1 (encore 35 unités libres dans le dernier)",
        "Imposent l'UCS-2 (70 caractères par SMS au lieu de 160) : ê (U+00EA), "
        "« (U+00AB), U+00A0 (NO-BREAK SPACE), » (U+00BB)",
        "Version GSM-7 proposée : 1 SMS, 35 unités",  # { and } cost 2 septets
        '  Fete du village "samedi" à {lieu}',
        "Champs à remplir avant l'envoi : {lieu}",
        "Coût estimé : 0,05 € par destinataire",
    ]
    assert not no_config.exists()  # no database was created


def test_message_check_json_with_topic(no_config: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["message", "check", "Fête samedi 14h", "--topic", "evenements", "--json"]) == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {
        "text": "Fête samedi 14h\nDésinscription : répondez STOP",
        "characters": 46,
        "encoding": "UCS-2",
        "units": 46,
        "segments": 1,
        "per_segment": 70,
        "remaining": 24,
        "ucs2_characters": ["ê"],
        "ucs2_code_points": ["U+00EA"],
        "gsm7_suggestion": "Fete samedi 14h\nDésinscription : répondez STOP",
        "suggestion_segments": 1,
        "suggestion_units": 46,
        "topic": "evenements",
    }
    assert not no_config.exists()
    assert main(["message", "check", "Fête samedi 14h", "--topic", "evenements"]) == 0
    assert capsys.readouterr().out.splitlines()[0] == (
        "Thème Événements : mention ajoutée « Désinscription : répondez STOP »"
    )


def test_message_check_reads_stdin_in_english(
    tmp_path: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
    capsys,
) -> None:
    path = tmp_path / "config.toml"
    path.write_text(
        '[console]\nlanguage = "en"\n[provider]\nprice_per_segment = 0.06\n', encoding="utf-8"
    )
    monkeypatch.setattr("sys.stdin", io.StringIO("Crue : évacuez les berges " * 7 + "\n"))
    assert main(["--config", str(path), "message", "check", "-", "--topic", "alertes"]) == 0
    assert capsys.readouterr().out.splitlines() == [
        "Characters: 182",
        "Encoding: GSM-7",
        "Units: 182 (153 per SMS)",
        "SMS: 2 (124 units still free in the last one)",
        "Estimated cost: €0.12 per recipient",
    ]


def test_message_check_unknown_topic(no_config: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    assert main(["message", "check", "x", "--topic", "nope"]) == 2
    assert "thème inconnu 'nope'" in capsys.readouterr().err


# ---- tocsin send: STOP mention and placeholders ------------------------------------


def _campaign_texts(db_url: str) -> list[str]:
    from storage.models import Campaign

    engine = make_engine(db_url)
    with Session(engine) as session:
        texts = [c.text for c in session.exec(select(Campaign)).all()]
    engine.dispose()
    return texts


def test_send_appends_the_topic_stop_mention(
    config_file: Path,
    db_url: str,  # type: ignore[no-untyped-def]
    capsys,
) -> None:
    assert run(config_file, "contact", "add", "0611223344") == 0
    assert (
        run(
            config_file,
            "consent",
            "grant",
            "0611223344",
            "--topic",
            "evenements",
            "--source",
            "paper_form",
        )
        == 0
    )
    capsys.readouterr()
    assert (
        run(
            config_file,
            "send",
            "--topic",
            "evenements",
            "--to",
            "0611223344",
            "--text",
            "Fête du village samedi",
            "--yes",
            "--json",
        )
        == 0
    )
    result = json.loads(capsys.readouterr().out)
    assert set(result) == {"campaign_id", "counts", "skipped"}
    assert result["counts"]["queued"] == 1
    # Typed with the mention already (any case): not added twice. Alerts have none.
    assert (
        run(
            config_file,
            "send",
            "--topic",
            "evenements",
            "--to",
            "0611223344",
            "--text",
            "Brocante\ndésinscription : RÉPONDEZ STOP",
            "--yes",
        )
        == 0
    )
    assert (
        run(
            config_file,
            "send",
            "--topic",
            "alertes",
            "--to",
            "0611223344",
            "--text",
            "Crue : évacuez les berges",
            "--yes",
        )
        == 0
    )
    assert _campaign_texts(db_url) == [
        "Fête du village samedi\nDésinscription : répondez STOP",
        "Brocante\ndésinscription : RÉPONDEZ STOP",
        "Crue : évacuez les berges",
    ]


def test_send_preview_tells_the_sms_count(
    config_file: Path,
    monkeypatch,  # type: ignore[no-untyped-def]
    capsys,
) -> None:
    assert run(config_file, "contact", "add", "0611223344") == 0
    capsys.readouterr()
    monkeypatch.setattr("sys.stdin", io.StringIO("1\n"))
    assert run(config_file, "send", "--topic", "alertes", "--all", "--text", "Crue") == 0
    assert "1 SMS (GSM-7) chacun, coût estimé 0,05" in capsys.readouterr().err


def test_send_refuses_unfilled_placeholders(
    config_file: Path,
    db_url: str,  # type: ignore[no-untyped-def]
    capsys,
) -> None:
    assert run(config_file, "contact", "add", "0611223344") == 0
    capsys.readouterr()
    assert (
        run(
            config_file,
            "send",
            "--topic",
            "alertes",
            "--all",
            "--text",
            "Val-Tocsin : accident {lieu} ({zone}), évitez le secteur",
            "--yes",
        )
        == 2
    )
    err = capsys.readouterr().err.strip()
    assert err == "tocsin: le message contient encore des champs à remplir : {lieu}, {zone}"
    assert _campaign_texts(db_url) == []
    # Braces that are not placeholders are text.
    assert (
        run(
            config_file,
            "send",
            "--topic",
            "alertes",
            "--all",
            "--text",
            "Code porte {1234} ou {prenom}",
            "--yes",
        )
        == 0
    )


def test_emergency_send_then_retry_failed(
    config_file: Path,
    db_url: str,  # type: ignore[no-untyped-def]
    capsys,
) -> None:
    from console.sending.providers.base import SendResult
    from console.sending.queue import claim_batch, record_results
    from storage.models import Campaign

    for number in ("0611223344", "0611223355"):
        assert run(config_file, "contact", "add", number) == 0
    capsys.readouterr()
    assert (
        run(
            config_file,
            "send",
            "--topic",
            "alertes",
            "--all",
            "--emergency",
            "--text",
            "Crue : montez à l'étage",
            "--yes",
            "--json",
        )
        == 0
    )
    out, err = capsys.readouterr()
    campaign_id = json.loads(out)["campaign_id"]
    assert "tocsin: attention : aucun worker ne tourne" in err
    engine = make_engine(db_url)
    with Session(engine) as session:
        campaign = session.get(Campaign, campaign_id)
        assert campaign is not None
        assert (campaign.kind, campaign.priority, campaign.enqueued) == ("emergency", 100, True)
        now = campaign.created_at
    claimed = claim_batch(engine, "w1", now, 60, 10)
    record_results(
        engine,
        "w1",
        claimed,
        [SendResult(c.message_id, "failed", reason="30007: Carrier violation") for c in claimed],
        now,
        5,
    )
    engine.dispose()
    assert run(config_file, "campaign", "retry", str(campaign_id), "--json") == 0
    retried = json.loads(capsys.readouterr().out)
    assert retried["retried"] == 2 and retried["counts"]["queued"] == 2
    assert retried["counts"]["failed"] == 0
    assert run(config_file, "campaign", "retry", str(campaign_id)) == 0
    assert f"campagne n° {campaign_id} : 0 message(s) en échec remis en file" in (
        capsys.readouterr().out
    )
    assert run(config_file, "campaign", "retry", "999") == 1
    assert "aucune campagne #999" in capsys.readouterr().err


def test_the_verbs_speak_the_configured_language(config_file: Path, capsys) -> None:  # type: ignore[no-untyped-def]
    # French by default: lines and error lines; exit statuses and JSON keys stay as they are.
    assert run(config_file, "contact", "add", "06 12 34 56 78") == 0
    assert capsys.readouterr().out.strip() == "contact n° 1 +33612345678 enregistré"
    assert run(config_file, "contact", "add", "06 12 34 56 78") == 1
    assert capsys.readouterr().err.strip() == "tocsin: +33612345678 est déjà le contact #1"
    assert run(config_file, "campaign", "resolve", "1") == 2
    assert capsys.readouterr().err.strip() == "tocsin: resolve demande --resend ou --mark-sent"

    english = config_file.read_text(encoding="utf-8") + '[console]\nlanguage = "en"\n'
    config_file.write_text(english, encoding="utf-8")
    assert run(config_file, "contact", "add", "06 12 34 56 79") == 0
    assert capsys.readouterr().out.strip() == "contact #2 +33612345679 saved"
    assert run(config_file, "contact", "add", "06 12 34 56 79") == 1
    assert capsys.readouterr().err.strip() == "tocsin: +33612345679 is already contact #2"
    assert run(config_file, "campaign", "resolve", "1") == 2
    assert capsys.readouterr().err.strip() == "tocsin: resolve needs --resend or --mark-sent"
    assert run(config_file, "contact", "add", "06 12 34 56 70", "--json") == 0
    assert set(json.loads(capsys.readouterr().out)) == {
        "id",
        "number",
        "name",
        "zone",
        "groups",
        "sendable",
        "number_kind",
    }
