"""What the audit trail says about what nobody typed (the worker's start and stop, a
pause the provider caused), what it keeps of a campaign, and `audit head`/`verify`
as scripts use them."""

from __future__ import annotations

import asyncio
import hashlib
import json
from pathlib import Path

import pytest
from sqlalchemy import text
from sqlmodel import Session, col, select

from console.audit import verify_chains
from console.cli import main
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.roles import current_operator
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.providers.base import ProviderAuthError
from console.sending.worker_main import serve
from storage.engine import make_engine
from storage.models import AuditEntry
from tests.unit.test_worker import RecordingProvider, _campaign, _run_until_idle


def _entries(ctx: Context, action: str) -> list[AuditEntry]:
    with Session(ctx.engine) as session:
        return list(
            session.exec(
                select(AuditEntry)
                .where(col(AuditEntry.action) == action)
                .order_by(col(AuditEntry.seq))
            ).all()
        )


async def test_the_worker_audits_its_start_and_its_stop(ctx: Context) -> None:
    _campaign(ctx, 3)
    stop = asyncio.Event()
    running = asyncio.create_task(
        serve(ctx, RecordingProvider(), "token", stop=stop, owner="host:1:abcd", listen=False)
    )
    for _ in range(100):
        await asyncio.sleep(0.05)
        if _entries(ctx, "worker.start"):
            break
    stop.set()
    worker = await running
    started, stopped = _entries(ctx, "worker.start"), _entries(ctx, "worker.stop")
    assert len(started) == 1 and len(stopped) == 1
    assert started[0].operator == ctx.operator and started[0].target == "worker:host:1:abcd"
    details = json.loads(started[0].details)
    assert details["provider"] == "recording" and details["endpoint"] == "off"
    assert json.loads(stopped[0].details)["sent"] == worker.stats.sent
    assert started[0].seq < stopped[0].seq
    assert all(not problems for _, problems in verify_chains(ctx.engine).values())


async def test_a_pause_the_provider_caused_is_audited(ctx: Context) -> None:
    campaign_id = _campaign(ctx, 2)
    await _run_until_idle(
        ctx, RecordingProvider(fail_with=ProviderAuthError("twilio 20003: Authenticate"))
    )
    paused = _entries(ctx, "campaign.pause")
    assert len(paused) == 1
    assert paused[0].target == f"campaign:{campaign_id}"
    assert json.loads(paused[0].details) == {
        "by": "provider:recording",
        "reason": "twilio 20003: Authenticate",
    }


def test_a_campaign_audit_carries_its_text_hash_audience_and_recipients(ctx: Context) -> None:
    for i in range(3):
        add_contact(ctx, ContactInput(number=f"06 30 00 00 0{i}", zone="Les Prés"))
    add_contact(ctx, ContactInput(number="06 30 00 00 09", zone="La Gare"))
    result = create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes",
            text="Coupure d'eau",
            sender_id="MAIRIE",
            audience=Audience(zones=("Les Prés",), numbers=("06 30 00 00 09",)),
        ),
    )
    created = json.loads(_entries(ctx, "campaign.create")[0].details)
    enqueued = json.loads(_entries(ctx, "campaign.enqueued")[0].details)
    expected_hash = hashlib.sha256(b"Coupure d'eau").hexdigest()
    for details in (created, enqueued):
        assert details["text_sha256"] == expected_hash
        # Numbers typed one by one are counted, never written in the trail.
        assert details["audience"] == {
            "all": False,
            "zones": ["Les Prés"],
            "groups": [],
            "numbers": 1,
        }
    assert enqueued["recipients"] == 4 == result.counts["queued"]
    assert "+3363" not in _entries(ctx, "campaign.create")[0].details


# ---- the verbs ---------------------------------------------------------------------


@pytest.fixture
def config_file(tmp_path: Path, db_url: str) -> Path:
    path = tmp_path / "config.toml"
    key = tmp_path / "key"
    path.write_text(
        f'[database]\nurl = "{db_url}"\n'
        f'[privacy]\nhash_key_file = "{key}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n',
        encoding="utf-8",
    )
    return path


def run(config_file: Path, *args: str) -> int:
    return main(["--config", str(config_file), *args])


def test_audit_head_then_verify_against_it(
    config_file: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "contact", "add", "06 12 34 56 78") == 0
    assert run(config_file, "consent", "grant", "1", "--topic", "infos", "--source", "counter") == 0
    capsys.readouterr()
    assert run(config_file, "audit", "head") == 0
    lines = capsys.readouterr().out.splitlines()
    assert [line.split(":")[:2] for line in lines] == [["audit", "2"], ["consent", "1"]]
    assert run(config_file, "audit", "head", "--json") == 0
    heads = json.loads(capsys.readouterr().out)["heads"]
    assert heads["audit"]["anchor"] == lines[0] and heads["consent"]["keyed"] is True

    expect = [arg for line in lines for arg in ("--expect-head", line)]
    assert run(config_file, "audit", "verify", *expect) == 0
    out = capsys.readouterr().out
    assert "audit : 2 entrée(s), ok" in out and "consent_state : 1 ligne(s), ok" in out

    # The tail cut and the head put back: the recorded head tells.
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("DELETE FROM consent_event"))
        conn.execute(text("DELETE FROM consent_state"))
        conn.execute(text("UPDATE chain_head SET seq = 0 WHERE name = 'consent'"))
    engine.dispose()
    assert run(config_file, "audit", "verify", "--json", *expect) == 1
    report = json.loads(capsys.readouterr().out)
    assert report["ok"] is False
    reasons = [p["reason"] for p in report["chains"]["consent"]["problems"]]
    assert "entry 1 of the recorded head is missing: the chain was cut" in reasons
    assert report["derived"]["suppression"] == {"rows": 0, "problems": []}


def test_verify_reports_a_stop_undone_in_what_sending_reads(
    config_file: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "contact", "add", "06 12 34 56 78") == 0
    assert run(config_file, "consent", "grant", "1", "--topic", "infos", "--source", "counter") == 0
    assert (
        run(config_file, "consent", "withdraw", "1", "--topic", "infos", "--source", "counter") == 0
    )
    engine = make_engine(db_url)
    with engine.begin() as conn:
        conn.execute(text("UPDATE consent_state SET granted = :t"), {"t": True})
    engine.dispose()
    capsys.readouterr()
    assert run(config_file, "audit", "verify") == 1
    out = capsys.readouterr().out
    assert "audit : 3 entrée(s), ok" in out and "consent : 2 entrée(s), ok" in out
    assert "consent_state : 1 ligne(s), 1 différence(s)" in out
    assert "contact #1, infos: the current consent says granted, the ledger says withdrawn" in out


def test_expect_head_must_be_well_formed(
    config_file: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "audit", "verify", "--expect-head", "12:abc") == 2
    assert "expected CHAIN:SEQ:HASH" in capsys.readouterr().err


def test_rekey_needs_the_admin_and_a_stopped_worker(
    config_file: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    assert run(config_file, "audit", "rekey") == 0
    assert "déjà liées par HMAC" in capsys.readouterr().out
    viewer = tmp_path / "viewer.toml"
    viewer.write_text(
        config_file.read_text(encoding="utf-8").replace(
            f'admin = ["{current_operator()}"]', 'admin = []\nviewer = ["*"]\noperator = []'
        ),
        encoding="utf-8",
    )
    assert main(["--config", str(viewer), "audit", "rekey"]) == 1
    assert "n'a pas le rôle administrateur requis" in capsys.readouterr().err
