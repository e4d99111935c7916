"""tocsin plan / event / calendar as scripts use them, and the agenda import."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime
from pathlib import Path

import pytest
import time_machine

from console.cli import main
from console.roles import current_operator

NOW = datetime(2026, 3, 14, 9, 0, tzinfo=UTC)  # Saturday 10:00 in Paris

AGENDA = """BEGIN:VCALENDAR
VERSION:2.0
PRODID:-//Mairie//FR
BEGIN:VEVENT
UID:brocante-2026@mairie
DTSTART;TZID=Europe/Paris:20260328T090000
SUMMARY:Brocante
LOCATION:Place de l'Église
END:VEVENT
BEGIN:VEVENT
UID:marche@mairie
DTSTART;TZID=Europe/Paris:20260321T080000
RRULE:FREQ=WEEKLY;BYDAY=SA;COUNT=4
EXDATE;TZID=Europe/Paris:20260404T080000
SUMMARY:Marché
END:VEVENT
END:VCALENDAR
"""


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n',
        encoding="utf-8",
    )
    return path


def run(config_file: Path, *args: str) -> int:
    with time_machine.travel(NOW, tick=False):
        return main(["--config", str(config_file), *args])


def _json(capsys: pytest.CaptureFixture[str]) -> object:
    return json.loads(capsys.readouterr().out)


def test_plan_add_shows_ten_occurrences_in_french_then_saves(
    config_file: Path, capsys: pytest.CaptureFixture[str], monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setattr("sys.stdin", io.StringIO("0\n"))
    assert (
        run(
            config_file,
            "plan",
            "add",
            "--topic",
            "travaux",
            "--all",
            "--text",
            "Travaux rue Haute",
            "--cron",
            "every-day 12:15",
            "--from",
            "2026-04-01",
            "--until",
            "2026-04-30",
        )
        == 0
    )
    out = capsys.readouterr()
    lines = [line for line in out.err.splitlines() if line.startswith("- ")]
    assert len(lines) == 10
    assert lines[0] == "- mercredi 1 avril 2026 à 12:15"
    assert "dimanche" in out.err and "jour férié (Lundi de Pâques)" in out.err
    assert "Envoi planifié #1 enregistré" in out.out
    assert run(config_file, "plan", "list", "--json") == 0
    [plan] = _json(capsys)  # type: ignore[misc]
    assert plan["kind"] == "cron" and plan["occurrences"]["sent"] == 0
    assert run(config_file, "plan", "preview", "1", "--count", "3", "--json") == 0
    preview = _json(capsys)
    assert [o["key"] for o in preview["occurrences"]] == [  # type: ignore[index]
        "2026-04-01T12:15",
        "2026-04-02T12:15",
        "2026-04-03T12:15",
    ]
    assert run(config_file, "plan", "cancel", "1", "--occurrence", "2026-04-02T12:15") == 0
    assert "annulé (2026-04-02T12:15)" in capsys.readouterr().out
    assert run(config_file, "plan", "cancel", "1", "--json") == 0
    assert _json(capsys)["cancelled"] == 1  # type: ignore[index]
    assert run(config_file, "plan", "resolve", "1") == 2


def test_plan_add_refuses_bad_input_in_one_line(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    base = ("plan", "add", "--topic", "infos", "--all", "--text", "x", "--yes")
    assert run(config_file, *base, "--cron", "every-blursday 12:00") == 2
    assert run(config_file, *base, "--best-slot", "demain") == 2
    assert run(config_file, *base, "--at", "2026-03-16T12:15", "--from", "2026-03-01") == 2
    assert run(config_file, *base, "--event", "99") == 2
    errors = capsys.readouterr().err.strip().splitlines()
    assert len(errors) == 4 and all(line.startswith("tocsin: ") for line in errors)


def test_events_and_their_reminders(config_file: Path, capsys: pytest.CaptureFixture[str]) -> None:
    args = ("event", "add", "--name", "[b]Brocante[/b]\x1b[31m", "--start", "2026-03-28T09:00")
    assert run(config_file, *args, "--json") == 0
    event_id = _json(capsys)["id"]  # type: ignore[index]
    assert (
        run(
            config_file,
            "plan",
            "add",
            "--topic",
            "evenements",
            "--all",
            "--text",
            "Brocante samedi",
            "--event",
            str(event_id),
            "--offsets",
            "J-7,J-1",
            "--yes",
            "--json",
        )
        == 0
    )
    added = _json(capsys)
    assert len(added["schedule_ids"]) == 2  # type: ignore[index]
    assert run(config_file, "event", "move", str(event_id), "--start", "2026-04-04T09:00") == 0
    assert "2 rappel(s)" in capsys.readouterr().out
    assert run(config_file, "event", "list") == 0
    listed = capsys.readouterr().out
    assert "\x1b" not in listed and "samedi 4 avril 2026 à 09:00" in listed
    assert run(config_file, "event", "cancel", str(event_id), "--json") == 0
    assert _json(capsys)["reminders_cancelled"] == 2  # type: ignore[index]


def test_ics_import_expands_and_never_doubles(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agenda = tmp_path / "agenda.ics"
    agenda.write_text(AGENDA, encoding="utf-8")
    assert run(config_file, "event", "import", str(agenda), "--json") == 0
    first = _json(capsys)
    # The brocante, and the market on 21 and 28 March and 11 April (4 April excluded).
    assert first["created"] == 4  # type: ignore[index]
    assert run(config_file, "event", "import", str(agenda), "--json") == 0
    again = _json(capsys)
    assert (again["created"], again["unchanged"]) == (0, 4)  # type: ignore[index]
    agenda.write_text(AGENDA.replace("20260328T090000", "20260329T100000"), encoding="utf-8")
    assert run(config_file, "event", "import", str(agenda), "--json") == 0
    moved = _json(capsys)
    assert (moved["created"], moved["updated"]) == (0, 1)  # type: ignore[index]
    assert run(config_file, "event", "list", "--json") == 0
    events = _json(capsys)
    assert len(events) == 4  # type: ignore[arg-type]
    bad = tmp_path / "bad.ics"
    bad.write_text("not a calendar", encoding="utf-8")
    assert run(config_file, "event", "import", str(bad)) == 2


def test_calendar_export(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert (
        run(
            config_file,
            "plan",
            "add",
            "--topic",
            "infos",
            "--all",
            "--text",
            "Conseil municipal",
            "--best-slot",
            "2026-03-16",
            "--yes",
        )
        == 0
    )
    capsys.readouterr()
    out = tmp_path / "plans.ics"
    assert run(config_file, "calendar", "export", "--ics", str(out), "--json") == 0
    assert _json(capsys)["exported"] == 1  # type: ignore[index]
    text = out.read_text(encoding="utf-8")
    assert "DTSTART:20260316T111500Z" in text and "Conseil municipal" in text


def test_ics_overrides_and_cancellations(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    agenda = tmp_path / "agenda.ics"
    override = """BEGIN:VEVENT
UID:marche@mairie
RECURRENCE-ID;TZID=Europe/Paris:20260328T080000
DTSTART;TZID=Europe/Paris:20260328T090000
SUMMARY:Marché (décalé)
END:VEVENT
BEGIN:VEVENT
UID:brocante-2026@mairie
DTSTART;TZID=Europe/Paris:20260328T090000
SUMMARY:Brocante
STATUS:CANCELLED
END:VEVENT
END:VCALENDAR
"""
    agenda.write_text(AGENDA, encoding="utf-8")
    assert run(config_file, "event", "import", str(agenda), "--json") == 0
    capsys.readouterr()
    body = AGENDA.replace("END:VCALENDAR\n", "")
    start = body.index("BEGIN:VEVENT\nUID:brocante-2026@mairie")
    body = body[:start] + body[body.index("END:VEVENT\n", start) + len("END:VEVENT\n") :]
    agenda.write_text(body + override, encoding="utf-8")
    assert run(config_file, "event", "import", str(agenda), "--json") == 0
    result = _json(capsys)
    assert (result["updated"], result["cancelled"]) == (1, 1)  # type: ignore[index]
    assert run(config_file, "event", "list", "--json") == 0
    names = {e["name"]: e["starts_at"] for e in _json(capsys)}  # type: ignore[union-attr]
    assert "Brocante" not in names
    assert names["Marché (décalé)"] == "2026-03-28T08:00:00+00:00"
