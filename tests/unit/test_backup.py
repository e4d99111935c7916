"""Backups: everything of the town in one file, restored into an empty database (of
either kind) only with the key it was made with; and the restore drill, a backup
taken while the worker sends."""

from __future__ import annotations

import gzip
import os
import stat
import time
import uuid
from collections import Counter
from collections.abc import Iterator
from datetime import timedelta
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import Connection, Engine, func, select, text
from sqlalchemy.engine import make_url

from console.audit import read_heads, verify_chains
from console.backup import RestoreRefused, backup_database, restore_database
from console.cli import main
from console.clock import FrozenClock
from console.config import (
    Config,
    DatabaseConfig,
    PrivacyConfig,
    ProviderConfig,
    SimulatedConfig,
    WorkerConfig,
)
from console.consent.integrity import check_consent_state, check_suppression
from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.service import ContactInput, add_contact, erase_contact
from console.context import Context
from console.roles import Role, current_operator
from console.sending.campaigns import Audience, CampaignRequest, create_campaign
from console.sending.demo_worker import DemoWorker
from console.sending.inbound import handle_inbound
from console.sending.providers.base import InboundSms
from storage.backup import BackupError, data_tables, row_counts
from storage.engine import make_engine, read_session
from storage.models import Message
from tests.conftest import TEST_KEY, make_context


@pytest.fixture
def fresh_url(tmp_path: Path, db_url: str) -> Iterator[str]:
    """A database with nothing in it, of the same kind as the test's."""
    if db_url.startswith("sqlite"):
        yield f"sqlite:///{tmp_path / 'restored' / 'tocsin.db'}"
        return
    yield from _fresh_postgres(db_url)


def _fresh_postgres(db_url: str) -> Iterator[str]:
    url = make_url(make_engine(db_url).url)
    admin = make_engine(url.set(database="postgres").render_as_string(False))
    name = f"tocsin_restore_{uuid.uuid4().hex[:10]}"
    with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
        conn.execute(text(f'CREATE DATABASE "{name}"'))
    try:
        yield url.set(database=name).render_as_string(False)
    finally:
        with admin.connect().execution_options(isolation_level="AUTOCOMMIT") as conn:
            conn.execute(text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


def _key_file(tmp_path: Path, key: bytes = TEST_KEY) -> Path:
    path = tmp_path / "restore.key"
    path.write_bytes(key + b"\n")
    path.chmod(0o600)
    return path


def _target_config(url: str, key_file: Path) -> Config:
    return Config(
        database=DatabaseConfig(url=url), privacy=PrivacyConfig(hash_key_file=str(key_file))
    )


def _town(ctx: Context, clock: FrozenClock) -> None:
    """A little of everything: residents, consents, a STOP, an erasure, a campaign."""
    for i in range(6):
        add_contact(
            ctx,
            ContactInput(
                number=f"06 12 34 56 0{i}",
                name=f"Élodie «{i}» \x1b[2J",
                zone="Les Prés" if i % 2 else "La Gare",
                groups=("seniors",) if i % 3 == 0 else (),
                notes="=1+1" if i == 2 else "",
            ),
        )
        clock.advance(timedelta(minutes=1))
        record_consent(ctx, ConsentRequest(i + 1, "evenements", "grant", "paper_form"))
    handle_inbound(ctx, InboundSms(sender="+33612345601", recipient="MAIRIE", text="STOP"), "sim")
    record_consent(ctx, ConsentRequest(3, "infos", "withdraw", "phone_call"))
    erase_contact(ctx, 3)
    create_campaign(
        ctx,
        CampaignRequest(
            topic="evenements",
            text="Fête du village samedi",
            sender_id="MAIRIE",
            audience=Audience(everyone=True),
        ),
    )


def _everything(engine: Engine) -> dict[str, list[tuple[Any, ...]]]:
    with read_session(engine) as session:
        conn = session.connection()
        return {
            t.name: [tuple(row) for row in conn.execute(select(t).order_by(*t.primary_key.columns))]
            for t in data_tables()
        }


def _all_ok(engine: Engine) -> None:
    chains = verify_chains(engine, TEST_KEY)
    assert all(not problems for _, problems in chains.values()), chains
    assert check_consent_state(engine).problems == []
    assert check_suppression(engine).problems == []


def test_a_backup_restores_every_row_into_an_empty_database(
    ctx: Context, clock: FrozenClock, tmp_path: Path, fresh_url: str
) -> None:
    _town(ctx, clock)
    backup = tmp_path / "nuit.tocsin-backup"
    written = backup_database(ctx, backup)
    assert stat.S_IMODE(backup.stat().st_mode) == 0o600  # every resident's number is in it
    assert written.counts["contact"] == 6 and written.counts["suppression"] == 2
    before = _everything(ctx.engine)
    restored = restore_database(
        _target_config(fresh_url, _key_file(tmp_path)), backup, clock=clock, role=Role.ADMIN
    )
    assert restored.counts == written.counts
    target = make_engine(fresh_url)
    try:
        after = _everything(target)
        # The backup's own audit entry came after its snapshot; the restore adds one.
        assert after.pop("audit_entry")[:-1] == before.pop("audit_entry")[:-1]
        after.pop("chain_head")
        before.pop("chain_head")
        assert after == before
        make_context(target, Config(), clock)
        _all_ok(target)
        # The restored town carries on: its ids and chains continue.
        add_contact(make_context(target, Config(), clock), ContactInput(number="06 98 76 54 32"))
        _all_ok(target)
    finally:
        target.dispose()


def test_a_sqlite_backup_restores_into_the_other_kind(
    ctx: Context, clock: FrozenClock, tmp_path: Path, db_url: str
) -> None:
    """One format for both: SQLite to PostgreSQL, PostgreSQL to SQLite."""
    _town(ctx, clock)
    backup = tmp_path / "nuit.tocsin-backup"
    backup_database(ctx, backup)
    if db_url.startswith("sqlite"):
        server = os.environ.get(
            "TOCSIN_TEST_POSTGRES_URL", "postgresql://postgres@127.0.0.1:5432/postgres"
        )
        try:
            make_engine(server).connect().close()
        except Exception as exc:
            from tests.support import missing_component

            missing_component(f"PostgreSQL at {server} to restore into: {exc}")
        urls = _fresh_postgres(server)
    else:
        urls = iter([f"sqlite:///{tmp_path / 'other' / 'tocsin.db'}"])
    url = next(urls)
    try:
        restore_database(
            _target_config(url, _key_file(tmp_path)), backup, clock=clock, role=Role.ADMIN
        )
        target = make_engine(url)
        make_context(target, Config(), clock)
        _all_ok(target)
        with target.connect() as conn:
            assert row_counts(conn)["contact"] == 6
        target.dispose()
    finally:
        for _ in urls:
            pass


def test_a_restore_with_another_key_is_refused(
    ctx: Context, clock: FrozenClock, tmp_path: Path, fresh_url: str
) -> None:
    _town(ctx, clock)
    backup = tmp_path / "nuit.tocsin-backup"
    backup_database(ctx, backup)
    other = _key_file(tmp_path, b"f" * 64)
    with pytest.raises(RestoreRefused, match="not the key the backup was made with"):
        restore_database(_target_config(fresh_url, other), backup, role=Role.ADMIN)
    missing = tmp_path / "nowhere.key"
    with pytest.raises(RestoreRefused, match="no hash key: put back the key file"):
        restore_database(_target_config(fresh_url, missing), backup, role=Role.ADMIN)
    assert not missing.exists()  # a restore never makes a key of its own
    _nothing_in(fresh_url)


def test_a_restore_over_a_towns_data_is_refused(
    ctx: Context, clock: FrozenClock, tmp_path: Path, db_url: str
) -> None:
    _town(ctx, clock)
    backup = tmp_path / "nuit.tocsin-backup"
    backup_database(ctx, backup)
    before = _everything(ctx.engine)
    with pytest.raises(RestoreRefused, match=r"the database is not empty \(.*6 contact"):
        restore_database(_target_config(db_url, _key_file(tmp_path)), backup, role=Role.ADMIN)
    assert _everything(ctx.engine) == before


def test_a_restore_needs_the_admin(ctx: Context, tmp_path: Path, fresh_url: str) -> None:
    backup = tmp_path / "nuit.tocsin-backup"
    backup_database(ctx, backup)
    with pytest.raises(RestoreRefused, match="needs the admin role"):
        restore_database(_target_config(fresh_url, _key_file(tmp_path)), backup, role=Role.OPERATOR)


@pytest.mark.parametrize("damage", ["edited", "cut"])
def test_a_damaged_backup_restores_nothing(
    ctx: Context, clock: FrozenClock, tmp_path: Path, fresh_url: str, damage: str
) -> None:
    _town(ctx, clock)
    backup = tmp_path / "nuit.tocsin-backup"
    backup_database(ctx, backup)
    lines = gzip.decompress(backup.read_bytes()).splitlines(keepends=True)
    if damage == "edited":
        # A withdrawal turned into a grant, in the file.
        lines = [line.replace(b'"withdraw"', b'"grant"') for line in lines]
        reason = "does not match the key"
    else:
        lines = lines[:-3]
        reason = "cut short"
    backup.write_bytes(gzip.compress(b"".join(lines)))
    with pytest.raises(BackupError, match=reason):
        restore_database(_target_config(fresh_url, _key_file(tmp_path)), backup, role=Role.ADMIN)
    _nothing_in(fresh_url)


def _nothing_in(url: str) -> None:
    database = make_url(url).database
    if url.startswith("sqlite") and database and not Path(database).exists():
        return  # not even created
    engine = make_engine(url)
    try:
        with engine.connect() as conn:
            assert sum(row_counts(conn).values()) == 0
    finally:
        engine.dispose()


# ---- the restore drill --------------------------------------------------------------


@pytest.fixture
def config() -> Config:
    # A provider quick enough to be mid-send for a second or two, not minutes.
    return Config(
        provider=ProviderConfig(
            rate=400, concurrency=4, simulated=SimulatedConfig(latency_ms=5, failure_rate=0.05)
        ),
        worker=WorkerConfig(batch_size=20),
    )


def _snapshot_counts(conn: Connection) -> dict[str, Any]:
    """What the source holds at the instant of the backup, counted independently."""
    message: Any = Message
    states = dict(conn.execute(select(message.state, func.count()).group_by(message.state)).all())
    return {
        "rows": row_counts(conn),
        "states": Counter({str(k): int(v) for k, v in states.items()}),
    }


def test_restore_drill_backup_during_a_live_send(
    ctx: Context, clock: FrozenClock, tmp_path: Path, fresh_url: str
) -> None:
    for i in range(600):
        add_contact(
            ctx, ContactInput(number=f"06 40 {i // 10000:02d} {i // 100 % 100:02d} {i % 100:02d}")
        )
    create_campaign(
        ctx,
        CampaignRequest(
            topic="alertes", text="Crue", sender_id="MAIRIE", audience=Audience(everyone=True)
        ),
    )
    worker = DemoWorker(ctx).start()
    try:
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            with read_session(ctx.engine) as session:
                sent = session.execute(
                    select(func.count()).where(Message.state != "queued")  # type: ignore[arg-type]
                ).scalar_one()
            if sent >= 60:
                break
            time.sleep(0.02)
        seen: dict[str, Any] = {}
        backup = tmp_path / "pendant.tocsin-backup"
        written = backup_database(
            ctx, backup, on_snapshot=lambda conn: seen.update(_snapshot_counts(conn))
        )
        with read_session(ctx.engine) as session:
            later = _snapshot_counts(session.connection())
    finally:
        worker.stop()
    assert worker.error == ""
    # The send was live: the source moved on past the backup's instant.
    assert seen["states"]["queued"] > 0 and later["states"] != seen["states"]
    assert written.counts == seen["rows"]

    restore_database(
        _target_config(fresh_url, _key_file(tmp_path)), backup, clock=clock, role=Role.ADMIN
    )
    target = make_engine(fresh_url)
    try:
        make_context(target, Config(), clock)
        _all_ok(target)
        restored = _snapshot_counts(target.connect())
        expected_rows = dict(seen["rows"])
        expected_rows["audit_entry"] += 1  # the restore's own entry
        assert restored["rows"] == expected_rows
        assert restored["states"] == seen["states"]
        assert {h.chain for h in read_heads(target, TEST_KEY) if h.keyed} == {"audit", "consent"}
    finally:
        target.dispose()


# ---- the verbs ----------------------------------------------------------------------


def test_backup_and_restore_from_the_command_line(
    tmp_path: Path, db_url: str, fresh_url: str, capsys: pytest.CaptureFixture[str]
) -> None:
    me = current_operator()
    key = tmp_path / "key"
    source = tmp_path / "source.toml"
    source.write_text(
        f'[database]\nurl = "{db_url}"\n[privacy]\nhash_key_file = "{key}"\n'
        f'[roles]\nadmin = ["{me}"]\n'
    )
    assert main(["--config", str(source), "contact", "add", "06 12 34 56 78"]) == 0
    backup = tmp_path / "nuit.tocsin-backup"
    capsys.readouterr()
    assert main(["--config", str(source), "db", "backup", str(backup), "--json"]) == 0
    import json

    report = json.loads(capsys.readouterr().out)
    assert report["counts"]["contact"] == 1 and len(report["key_fingerprint"]) == 16
    target = tmp_path / "target.toml"
    target.write_text(
        f'[database]\nurl = "{fresh_url}"\n[privacy]\nhash_key_file = "{key}"\n'
        f'[roles]\nadmin = ["{me}"]\n'
    )
    assert main(["--config", str(target), "db", "restore", str(backup)]) == 0
    assert "lignes restaurées" in capsys.readouterr().out
    assert main(["--config", str(target), "audit", "verify"]) == 0
    # Twice is refused: the database is no longer empty.
    assert main(["--config", str(target), "db", "restore", str(backup)]) == 1
    assert "is not empty" in capsys.readouterr().err
    assert main(["--config", str(target), "db", "restore", str(tmp_path / "none")]) == 1
    assert "no such file" in capsys.readouterr().err
