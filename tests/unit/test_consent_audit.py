"""The consent audit's domain: keywords, the review queue, coverage, the journal,
the point-in-time replay, rented lists, retention and the DPO reports."""

from __future__ import annotations

import io
import json
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from pypdf import PdfReader
from sqlmodel import Session, col, select

from console.audit import chain_heads, verify_chains
from console.cli import main
from console.clock import FrozenClock
from console.config import Config
from console.consent.coverage import coverage, residents
from console.consent.integrity import check_consent_state, check_suppression
from console.consent.journal import JournalFilter, journal, resident_history
from console.consent.keywords import keyword_key, match_keyword
from console.consent.ledger import ConsentRequest, record_consent
from console.consent.lists import ListError, ListInput, add_list, expire_lists, list_summaries
from console.consent.replay import counts_at, state_at
from console.consent.reports import (
    access_data,
    write_access_pdf,
    write_register_csv,
    write_register_pdf,
    write_withdrawals_csv,
)
from console.consent.retention import apply_retention, schedule, summary
from console.consent.review import ReviewError, classify, pending_count, replies
from console.contacts.service import ContactInput, add_contact, update_contact
from console.context import Context
from console.roles import PermissionDenied, Role, current_operator
from console.sending.inbound import handle_inbound
from console.sending.providers.base import InboundSms
from storage.models import AuditEntry, ConsentState, Contact
from tests.conftest import make_context


def _add(ctx: Context, number: str, name: str = "", zone: str = "") -> int:
    contact = add_contact(ctx, ContactInput(number=number, name=name, zone=zone))
    assert contact.id is not None
    return contact.id


# --- keywords -----------------------------------------------------------------------


@pytest.mark.parametrize(
    ("text", "topic"),
    [
        ("OUI TRAVAUX", "travaux"),
        ("oui travaux", "travaux"),
        ("  Oui   Travaux ! ", "travaux"),
        ("INSCRIPTION ÉVÉNEMENTS", "evenements"),
        ("inscription evenements", "evenements"),
        ("je dis OUI TRAVAUX", None),
        ("OUI", None),
        ("OUI ALERTES", None),  # public safety needs no opt-in: no keyword
    ],
)
def test_keywords_ignore_accents_case_and_spacing(text: str, topic: str | None) -> None:
    assert match_keyword(Config(), text) == topic


def test_keyword_key() -> None:
    assert keyword_key("Inscription  ÉVÉNEMENTS.") == "inscription evenements"


def test_keyword_records_a_consent_with_the_inbound_as_proof(ctx: Context) -> None:
    cid = _add(ctx, "06 40 00 00 11")
    outcome = handle_inbound(ctx, InboundSms("0640000011", "SM1", "Oui Travaux"), "twilio")
    assert outcome.keyword == "travaux" and not outcome.review
    (line,) = journal(ctx, JournalFilter(contact_id=cid))
    assert (line.action, line.source, line.proof_ref) == (
        "grant",
        "sms_keyword",
        f"inbound:{outcome.inbound_id}",
    )
    history = resident_history(ctx, cid)
    assert [i.text for i in history.inbound] == ["Oui Travaux"]


def test_keyword_from_a_newcomer_creates_the_contact(ctx: Context) -> None:
    outcome = handle_inbound(ctx, InboundSms("+33640000012", "", "INSCRIPTION EVENEMENTS"), "x")
    assert outcome.contact_id is not None
    with Session(ctx.engine) as session:
        contact = session.get(Contact, outcome.contact_id)
        assert contact is not None and contact.number == "+33640000012"
        assert contact.source == "sms_keyword"


def test_confirmation_goes_through_the_send_ledger(engine, clock) -> None:  # type: ignore[no-untyped-def]
    from console.config import ConsentConfig
    from storage.models import Campaign, Message

    config = Config(consent=ConsentConfig(confirm_keyword=True))
    ctx = make_context(engine, config, clock)
    _add(ctx, "06 40 00 00 13")
    handle_inbound(ctx, InboundSms("0640000013", "", "oui travaux"), "x")
    with Session(engine) as session:
        campaign = session.exec(select(Campaign)).one()
        message = session.exec(select(Message)).one()
    assert campaign.topic == "travaux" and "Travaux" in campaign.text
    assert message.number == "+33640000013" and message.state == "queued"


def test_confirmation_is_off_by_default(ctx: Context) -> None:
    from storage.models import Campaign

    _add(ctx, "06 40 00 00 14")
    handle_inbound(ctx, InboundSms("0640000014", "", "oui travaux"), "x")
    with Session(ctx.engine) as session:
        assert session.exec(select(Campaign)).first() is None


# --- review -------------------------------------------------------------------------


@pytest.mark.parametrize("text", ["arrêtez svp", "Merci, stop", "S T O P", "Bonjour"])
def test_unclear_replies_wait_for_review(ctx: Context, text: str) -> None:
    cid = _add(ctx, "06 40 00 00 21")
    outcome = handle_inbound(ctx, InboundSms("0640000021", "", text), "kannel")
    assert outcome.review and not outcome.stop
    assert pending_count(ctx) == 1
    (reply,) = replies(ctx)
    assert reply.text == text and reply.contact_id == cid
    assert journal(ctx, JournalFilter(contact_id=cid)) == []


def test_clear_stop_still_works_and_is_not_queued(ctx: Context) -> None:
    cid = _add(ctx, "06 40 00 00 22")
    outcome = handle_inbound(ctx, InboundSms("0640000022", "", "STOP"), "kannel")
    assert outcome.stop and pending_count(ctx) == 0
    lines = journal(ctx, JournalFilter(contact_id=cid))
    assert {line.source for line in lines} == {"sms_stop"}


def test_operator_classifies_a_reply(ctx: Context) -> None:
    cid = _add(ctx, "06 40 00 00 23")
    record_consent(ctx, ConsentRequest(cid, "infos", "grant", "paper_form", "F-1"))
    outcome = handle_inbound(ctx, InboundSms("0640000023", "", "Merci, stop les infos"), "x")
    assert outcome.inbound_id is not None
    reply = classify(ctx, outcome.inbound_id, ["infos"])
    assert reply.status == "classified" and reply.classified_by == "secretariat"
    line = journal(ctx, JournalFilter(contact_id=cid))[0]
    assert (line.action, line.source, line.proof_ref) == (
        "withdraw",
        "operator",
        f"inbound:{outcome.inbound_id}",
    )
    assert pending_count(ctx) == 0
    with pytest.raises(ReviewError, match="already classified"):
        classify(ctx, outcome.inbound_id, [])


def test_classifying_everything_suppresses_like_a_stop(ctx: Context) -> None:
    _add(ctx, "06 40 00 00 24")
    outcome = handle_inbound(ctx, InboundSms("0640000024", "", "S T O P"), "x")
    assert outcome.inbound_id is not None
    classify(ctx, outcome.inbound_id, list(ctx.config.topics))
    assert check_suppression(ctx.engine).problems == []
    assert check_consent_state(ctx.engine).problems == []
    assert coverage(ctx)[0].topics[0].counts["stop"] == 1


def test_viewers_cannot_classify(engine, config, clock) -> None:  # type: ignore[no-untyped-def]
    ctx = make_context(engine, config, clock)
    _add(ctx, "06 40 00 00 25")
    outcome = handle_inbound(ctx, InboundSms("0640000025", "", "hein ?"), "x")
    viewer = make_context(engine, config, clock, role=Role.VIEWER, operator="lecteur")
    assert len(replies(viewer)) == 1
    with pytest.raises(PermissionDenied):
        classify(viewer, outcome.inbound_id or 0, [])


# --- coverage and journal -----------------------------------------------------------


def test_coverage_matrix_and_the_residents_behind_a_figure(ctx: Context) -> None:
    a = _add(ctx, "06 40 00 00 31", "A", "Nord")
    b = _add(ctx, "06 40 00 00 32", "B", "Nord")
    c = _add(ctx, "06 40 00 00 33", "C", "Sud")
    _add(ctx, "01 40 00 00 34", "D fixe", "Sud")
    record_consent(ctx, ConsentRequest(a, "infos", "grant", "paper_form"))
    record_consent(ctx, ConsentRequest(b, "infos", "withdraw", "paper_form"))
    handle_inbound(ctx, InboundSms("0640000033", "", "STOP"), "x")
    (town,) = coverage(ctx)
    by_topic = {t.topic: t for t in town.topics}
    infos = by_topic["infos"]
    assert infos.counts == {
        "consented": 1,
        "withdrawn": 1,
        "never_asked": 1,
        "mission": 0,
        "stop": 1,
    }
    assert infos.total == 4 and infos.reachable == 1
    alertes = by_topic["alertes"]
    assert alertes.counts["mission"] == 3 and alertes.counts["stop"] == 1
    # Fixed lines cannot take an SMS: A and B reachable by the mission.
    assert alertes.reachable == 2
    zones = {cov.zone: cov for cov in coverage(ctx, by_zone=True)}
    assert set(zones) == {"Nord", "Sud"}
    assert {t.topic: t.counts["stop"] for t in zones["Sud"].topics}["infos"] == 1
    assert [r.id for r in residents(ctx, "infos", "consented")] == [a]
    assert [r.id for r in residents(ctx, "infos", "stop")] == [c]
    assert [r.name for r in residents(ctx, "alertes", "mission", zone="Sud")] == ["D fixe"]
    page = residents(ctx, "alertes", "mission", limit=1)
    assert [r.id for r in residents(ctx, "alertes", "mission", after_id=page[-1].id)] == [
        r.id for r in residents(ctx, "alertes", "mission")[1:]
    ]


def test_journal_filters(ctx: Context, clock: FrozenClock) -> None:
    a = _add(ctx, "06 40 00 00 41", "[b]x[/b]")
    record_consent(ctx, ConsentRequest(a, "infos", "grant", "paper_form", "F-7"))
    clock.advance(timedelta(days=2))
    record_consent(ctx, ConsentRequest(a, "travaux", "grant", "web_form", "W-1"))
    lines = journal(ctx)
    assert [line.topic for line in lines] == ["travaux", "infos"]
    assert lines[1].proof_ref == "F-7" and lines[1].operator == "secretariat"
    assert lines[1].name == "[b]x[/b]"
    assert [line.topic for line in journal(ctx, JournalFilter(source="paper_form"))] == ["infos"]
    assert [line.topic for line in journal(ctx, JournalFilter(topic="travaux"))] == ["travaux"]
    since = clock.now() - timedelta(days=1)
    assert [line.topic for line in journal(ctx, JournalFilter(since=since))] == ["travaux"]
    assert journal(ctx, before_seq=lines[0].seq)[0].topic == "infos"


# --- replay -------------------------------------------------------------------------


def test_state_on_a_past_date(ctx: Context, clock: FrozenClock) -> None:
    a = _add(ctx, "06 40 00 00 51")
    record_consent(ctx, ConsentRequest(a, "infos", "grant", "paper_form"))
    before = clock.now()
    clock.advance(timedelta(days=10))
    record_consent(ctx, ConsentRequest(a, "infos", "withdraw", "phone_call"))
    assert state_at(ctx.engine, before) == {(a, "infos"): True}
    assert state_at(ctx.engine, clock.now()) == {(a, "infos"): False}
    assert state_at(ctx.engine, before - timedelta(seconds=1)) == {}
    assert counts_at(ctx.engine, before)["infos"] == {"consented": 1, "withdrawn": 0}


_EVENTS = st.lists(
    st.tuples(
        st.integers(0, 2),  # contact
        st.sampled_from(["infos", "travaux"]),
        st.sampled_from(["grant", "withdraw"]),
        st.integers(0, 5),  # hours since the previous record
        st.integers(0, 48),  # how many hours before its recording it occurred
    ),
    min_size=1,
    max_size=14,
)


@settings(
    max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture]
)
@given(events=_EVENTS)
def test_replay_equals_the_incremental_state(
    engine,
    config,
    events: list[tuple[int, str, str, int, int]],  # type: ignore[no-untyped-def]
) -> None:
    """The state rebuilt at any date equals consent_state as it was at that date."""
    from sqlalchemy import delete

    from storage.models import ChainHead, ConsentEvent, ContactGroup

    with Session(engine) as session:
        for model in (ConsentState, ConsentEvent, AuditEntry, ContactGroup, Contact, ChainHead):
            session.execute(delete(model))
        session.commit()
    clock = FrozenClock(datetime(2026, 1, 1, tzinfo=UTC))
    ctx = make_context(engine, config, clock)
    ids = [_add(ctx, f"06 40 00 01 0{i}") for i in range(3)]
    snapshots: list[tuple[datetime, dict[tuple[int, str], bool]]] = []
    for who, topic, action, gap, back in events:
        clock.advance(timedelta(hours=gap, seconds=1))
        record_consent(
            ctx,
            ConsentRequest(
                ids[who],
                topic,
                action,
                "paper_form",
                occurred_at=clock.now() - timedelta(hours=back),
            ),
        )
        with Session(engine) as session:
            held = {(s.contact_id, s.topic): s.granted for s in session.exec(select(ConsentState))}
        snapshots.append((clock.now(), held))
    for at, held in snapshots:
        assert state_at(engine, at) == held


# --- rented lists -------------------------------------------------------------------


def _proof(tmp_path: Path) -> Path:
    proof = tmp_path / "preuve.pdf"
    proof.write_bytes(b"%PDF proof of consent")
    return proof


def test_a_list_records_its_provenance(ctx: Context, tmp_path: Path) -> None:
    import hashlib

    row = add_list(
        ctx,
        ListInput(
            "optin-2026",
            "DataLoc",
            "C-42",
            datetime(2025, 6, 1, tzinfo=UTC),
            "J'accepte de recevoir les infos de la mairie",
            ("infos", "evenements"),
            _proof(tmp_path),
        ),
    )
    assert row.proof_sha256 == hashlib.sha256(b"%PDF proof of consent").hexdigest()
    assert row.expiry_months == 12
    with pytest.raises(ListError, match="already registered"):
        add_list(
            ctx,
            ListInput("optin-2026", "x", "y", row.consented_at, "w", ("infos",), _proof(tmp_path)),
        )


def _csv(tmp_path: Path) -> Path:
    path = tmp_path / "loue.csv"
    path.write_text("numero;nom\n0640000061;Ana\n0640000062;Bob\n", encoding="utf-8")
    return path


def _cli(tmp_path: Path, db_url: str, *args: str) -> int:
    config = tmp_path / "config.toml"
    key = tmp_path / "key"
    if not key.exists():
        key.write_text("ab" * 32)
        key.chmod(0o600)
    config.write_text(
        f'[database]\nurl = "{db_url}"\n[privacy]\nhash_key_file = "{key}"\n'
        f'[roles]\nadmin = ["{current_operator()}"]\n'
    )
    return main(["--config", str(config), *args])


def test_import_refuses_an_unregistered_list(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    status = _cli(tmp_path, db_url, "import", "contacts", str(_csv(tmp_path)), "--list", "x")
    assert status == 2
    assert "enregistrez d'abord sa provenance" in capsys.readouterr().err


def test_import_with_a_registered_list(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    proof = _proof(tmp_path)
    assert (
        _cli(
            tmp_path,
            db_url,
            "list",
            "add",
            "loc1",
            "--provider",
            "DataLoc",
            "--contract",
            "C-1",
            "--consented-on",
            "2025-09-01",
            "--wording",
            "Oui aux infos",
            "--topics",
            "infos,evenements",
            "--proof",
            str(proof),
        )
        == 0
    )
    assert _cli(tmp_path, db_url, "import", "contacts", str(_csv(tmp_path)), "--list", "loc1") == 0
    capsys.readouterr()
    assert _cli(tmp_path, db_url, "list", "show", "loc1", "--json") == 0
    shown = json.loads(capsys.readouterr().out)
    assert shown["residents"] == 2 and shown["in_force"] == 4
    assert shown["topics"] == ["infos", "evenements"]
    assert shown["expires_at"].startswith("2026-08-31T22:00")  # midnight in Paris
    assert _cli(tmp_path, db_url, "list", "list", "--json") == 0
    assert len(json.loads(capsys.readouterr().out)) == 1


def test_list_consents_expire(ctx: Context, tmp_path: Path, clock: FrozenClock) -> None:
    from console.consent.lists import proof_ref
    from console.contacts.importer import ImportOptions, import_contacts

    row = add_list(
        ctx,
        ListInput(
            "old",
            "P",
            "C",
            clock.now() - timedelta(days=400),
            "w",
            ("infos",),
            _proof(tmp_path),
        ),
    )
    import_contacts(
        ctx,
        _csv(tmp_path),
        ImportOptions(
            consent_topic="infos",
            consent_source="rented_list",
            consent_proof=proof_ref(row),
            consent_at=row.consented_at,
        ),
    )
    (summary_row,) = list_summaries(ctx)
    assert summary_row.expired and summary_row.in_force == 2
    assert expire_lists(ctx, apply=True) == {"old": 2}
    assert list_summaries(ctx)[0].in_force == 0
    assert check_consent_state(ctx.engine).problems == []


# --- retention ----------------------------------------------------------------------


def test_retention_erases_who_is_due_with_the_audit_naming_it(
    ctx: Context, clock: FrozenClock
) -> None:
    old = _add(ctx, "06 40 00 00 71", "Ancien")
    stopped = _add(ctx, "06 40 00 00 72", "Stoppé")
    handle_inbound(ctx, InboundSms("0640000072", "", "STOP"), "x")
    clock.advance(timedelta(days=365 * 2))
    recent = _add(ctx, "06 40 00 00 73", "Récent")
    update_contact(ctx, stopped, ContactInput(number="06 40 00 00 72", name="Stoppé bis"))
    clock.advance(timedelta(days=365 + 10))
    assert [d.contact_id for d in schedule(ctx)] == [old]
    assert summary(ctx).due_now == 1
    done = apply_retention(ctx)
    assert [d.contact_id for d in done] == [old]
    with Session(ctx.engine) as session:
        gone = session.get(Contact, old)
        assert gone is not None and gone.erased_at is not None and gone.number is None
        entry = session.exec(
            select(AuditEntry).where(col(AuditEntry.action) == "contact.erase")
        ).one()
    assert json.loads(entry.details)["reason"] == "retention"
    assert entry.target == f"contact:{old}"
    assert recent not in [d.contact_id for d in schedule(ctx)]
    assert check_suppression(ctx.engine).problems == []


def test_retention_cli_json(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    assert _cli(tmp_path, db_url, "consent", "retention", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data == {"applied": False, "count": 0, "due": [], "expired_lists": {}}


# --- reports ------------------------------------------------------------------------


def _seed_report(ctx: Context) -> tuple[int, int]:
    a = _add(ctx, "06 40 00 00 81", "Élodie [b]Garçon[/b] \x1b[31m🎉", "Centre")
    b = _add(ctx, "06 40 00 00 82", "=cmd|' /C calc'!A0", "Centre")
    record_consent(ctx, ConsentRequest(a, "infos", "grant", "paper_form", "Formulaire 12"))
    record_consent(ctx, ConsentRequest(b, "infos", "withdraw", "phone_call", "Appel 3"))
    return a, b


def test_register_csv(ctx: Context) -> None:
    _seed_report(ctx)
    out = io.StringIO()
    assert write_register_csv(ctx, out, "infos") == 2
    text = out.getvalue()
    assert "Formulaire 12" in text and "Accord" in text and "Retrait" in text
    assert "\x1b" not in text and "'=cmd" in text


def test_register_pdf_text(ctx: Context, tmp_path: Path) -> None:
    _seed_report(ctx)
    path = tmp_path / "registre.pdf"
    assert write_register_pdf(ctx, path, "infos") == 2
    reader = PdfReader(path)
    text = "\n".join(page.extract_text() for page in reader.pages)
    assert "Commune de démonstration" in text
    assert "Registre des consentements" in text
    assert "Formulaire 12" in text and "Élodie" in text
    heads = chain_heads(ctx.engine, ctx.hash_key)
    flat = text.replace("\n", "")
    assert heads["consent"] in flat and heads["audit"] in flat
    assert "Page 1/1" in text


def test_register_pdf_is_paged_with_heads_on_every_page(ctx: Context, tmp_path: Path) -> None:
    for i in range(130):
        _add(ctx, f"06 41 00 {i // 100:02d} {i % 100:02d}", f"Habitant {i}")
    path = tmp_path / "r.pdf"
    write_register_pdf(ctx, path, "alertes")
    reader = PdfReader(path)
    assert len(reader.pages) == 3
    head = chain_heads(ctx.engine, ctx.hash_key)["audit"]
    for number, page in enumerate(reader.pages, 1):
        text = page.extract_text()
        assert head in text.replace("\n", "") and f"Page {number}/3" in text


def test_access_report(ctx: Context, tmp_path: Path) -> None:
    a, _ = _seed_report(ctx)
    handle_inbound(ctx, InboundSms("0640000081", "", "Merci, stop"), "x")
    data = access_data(ctx, a)
    assert data["contact"]["number"] == "+33640000081"
    assert [c["proof_ref"] for c in data["consents"]] == ["Formulaire 12"]
    assert [i["text"] for i in data["inbound"]] == ["Merci, stop"]
    assert data["suppressed"] is False
    path = tmp_path / "acces.pdf"
    write_access_pdf(ctx, path, a)
    text = PdfReader(path).pages[0].extract_text()
    assert "Droit d'accès" in text and "+33640000081" in text and "Merci, stop" in text


def test_withdrawals_csv(ctx: Context) -> None:
    _seed_report(ctx)
    out = io.StringIO()
    assert write_withdrawals_csv(ctx, out, ctx.clock.now() - timedelta(days=1)) == 1
    assert "Appel 3" in out.getvalue()


def test_report_cli(tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]) -> None:
    pdf = tmp_path / "r.pdf"
    assert (
        _cli(
            tmp_path,
            db_url,
            "consent",
            "report",
            "--topic",
            "infos",
            "--format",
            "pdf",
            "-o",
            str(pdf),
        )
        == 0
    )
    assert PdfReader(pdf).pages
    assert _cli(tmp_path, db_url, "consent", "report", "--topic", "nope") == 2
    assert _cli(tmp_path, db_url, "consent", "withdrawals", "--since", "2026-01-01") == 0
    assert _cli(tmp_path, db_url, "consent", "coverage", "--json") == 0
    assert _cli(tmp_path, db_url, "consent", "coverage", "--at", "2026-01-01", "--json") == 0
    assert "consented" in capsys.readouterr().out


def test_chains_still_verify(ctx: Context) -> None:
    _seed_report(ctx)
    handle_inbound(ctx, InboundSms("0640000082", "", "oui travaux"), "x")
    for _count, problems in verify_chains(ctx.engine).values():
        assert problems == []


def test_the_fast_hasher_is_the_hmac() -> None:
    from console.consent.suppression import number_hash, number_hasher

    for key in (b"k" * 64, b"short", b"x" * 100):
        digest = number_hasher(key)
        for number in ("+33612345678", "+262692000001", ""):
            assert digest(number) == number_hash(key, number)


def test_stop_list_matches_are_refreshed_when_it_grows(ctx: Context) -> None:
    _add(ctx, "06 40 00 00 91")
    _add(ctx, "06 40 00 00 92")
    handle_inbound(ctx, InboundSms("0640000091", "", "STOP"), "x")
    assert coverage(ctx)[0].topics[0].counts["stop"] == 1
    assert coverage(ctx)[0].topics[0].counts["stop"] == 1  # from the cache
    handle_inbound(ctx, InboundSms("0640000092", "", "STOP"), "x")
    assert coverage(ctx)[0].topics[0].counts["stop"] == 2


def test_checks_name_where_a_chain_broke(ctx: Context) -> None:
    from console.consent.checks import chain_states, older_than_retention, without_proof
    from storage.models import ConsentEvent

    a = _add(ctx, "06 40 00 00 95")
    record_consent(ctx, ConsentRequest(a, "infos", "grant", "paper_form"))
    record_consent(ctx, ConsentRequest(a, "travaux", "grant", "paper_form", "F-1"))
    assert without_proof(ctx) == 1 and older_than_retention(ctx) == 0
    assert all(s.broken_at is None for s in chain_states(ctx))
    with Session(ctx.engine) as session:
        event = session.exec(select(ConsentEvent).where(ConsentEvent.seq == 1)).one()
        event.proof_ref = "forged"
        session.add(event)
        session.commit()
    (consent,) = [s for s in chain_states(ctx) if s.chain == "consent"]
    assert consent.broken_at == 1 and consent.what


def test_review_and_classify_from_the_cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    from console.config import DatabaseConfig, PrivacyConfig

    assert _cli(tmp_path, db_url, "contact", "add", "0640000096") == 0
    config = Config(
        database=DatabaseConfig(url=db_url),
        privacy=PrivacyConfig(hash_key_file=str(tmp_path / "key")),
    )
    from console.bootstrap import build_context

    ctx = build_context(config, role=Role.ADMIN)
    handle_inbound(ctx, InboundSms("0640000096", "", "arrêtez svp"), "x")
    capsys.readouterr()
    assert _cli(tmp_path, db_url, "consent", "review", "--json") == 0
    (pending,) = json.loads(capsys.readouterr().out)
    assert pending["text"] == "arrêtez svp"
    assert _cli(tmp_path, db_url, "consent", "classify", str(pending["id"]), "--all", "--json") == 0
    assert json.loads(capsys.readouterr().out)["status"] == "classified"
    assert _cli(tmp_path, db_url, "consent", "classify", str(pending["id"]), "--nothing") == 2
    assert _cli(tmp_path, db_url, "consent", "access", "0640000096", "--format", "json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["suppressed"] is True and len(data["consents"]) == len(config.topics)


def test_retention_apply_from_the_cli(
    tmp_path: Path, db_url: str, capsys: pytest.CaptureFixture[str], engine
) -> None:  # type: ignore[no-untyped-def]
    from sqlalchemy import update

    assert _cli(tmp_path, db_url, "contact", "add", "0640000097") == 0
    with engine.begin() as conn:
        conn.execute(update(Contact).values(updated_at=datetime(2020, 1, 1, tzinfo=UTC)))
    capsys.readouterr()
    assert _cli(tmp_path, db_url, "consent", "retention", "--apply", "--yes", "--json") == 0
    data = json.loads(capsys.readouterr().out)
    assert data["applied"] is True and data["count"] == 1
    with Session(engine) as session:
        assert session.exec(select(Contact)).one().erased_at is not None


def test_register_pdf_with_the_longest_name(ctx: Context, tmp_path: Path) -> None:
    _add(ctx, "06 40 00 00 98", "Jean-" + "x" * 195)
    path = tmp_path / "long.pdf"
    assert write_register_pdf(ctx, path, "alertes") == 1
    text = PdfReader(path).pages[0].extract_text()
    assert "Jean-xxx" in text and "x" * 190 not in text  # cut to its column
