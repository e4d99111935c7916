"""Roles from config, matched against the Unix user and groups."""

from __future__ import annotations

import json
import os
import pwd
from dataclasses import replace
from pathlib import Path

import pytest
from sqlmodel import Session, select

from console.audit import verify_chains
from console.config import RolesConfig
from console.context import Context
from console.roles import PermissionDenied, Role, current_operator, role_for, unix_groups
from storage.models import AuditEntry

NOBODY: frozenset[str] = frozenset()


def test_defaults() -> None:
    roles = RolesConfig()
    assert role_for("root", NOBODY, roles) is Role.ADMIN
    assert role_for("marie", frozenset({"tocsin-admin"}), roles) is Role.ADMIN
    assert role_for("marie", frozenset({"tocsin-alert"}), roles) is Role.ALERTER
    assert role_for("marie", frozenset({"tocsin"}), roles) is Role.OPERATOR
    # "*" makes everyone else a viewer.
    assert role_for("marie", frozenset({"users"}), roles) is Role.VIEWER
    assert role_for("marie", NOBODY, roles) is Role.VIEWER


def test_user_names_and_groups() -> None:
    roles = RolesConfig(viewer=[], operator=["paul", "@accueil"], alerter=["@elus"], admin=["dsi"])
    assert role_for("paul", NOBODY, roles) is Role.OPERATOR
    assert role_for("jeanne", frozenset({"accueil"}), roles) is Role.OPERATOR
    assert role_for("jeanne", frozenset({"elus"}), roles) is Role.ALERTER
    assert role_for("dsi", NOBODY, roles) is Role.ADMIN
    # No "*" anywhere: an unknown user gets nothing.
    assert role_for("jeanne", frozenset({"users"}), roles) is Role.NONE


def test_group_entries_do_not_match_user_names() -> None:
    roles = RolesConfig(viewer=[], operator=["@paul"], alerter=[], admin=["elus"])
    # "@paul" is the group paul, not the user; "elus" is a user, not the group.
    assert role_for("paul", NOBODY, roles) is Role.NONE
    assert role_for("jeanne", frozenset({"elus"}), roles) is Role.NONE
    assert role_for("jeanne", frozenset({"paul"}), roles) is Role.OPERATOR


def test_highest_matching_role_wins() -> None:
    roles = RolesConfig(viewer=["*"], operator=["*"], alerter=["@elus"], admin=["@dsi"])
    assert role_for("x", NOBODY, roles) is Role.OPERATOR
    assert role_for("x", frozenset({"elus"}), roles) is Role.ALERTER
    assert role_for("x", frozenset({"elus", "dsi"}), roles) is Role.ADMIN
    everyone_admin = RolesConfig(viewer=["*"], operator=[], alerter=[], admin=["*"])
    assert role_for("x", NOBODY, everyone_admin) is Role.ADMIN


def test_role_order() -> None:
    assert Role.NONE < Role.VIEWER < Role.OPERATOR < Role.ALERTER < Role.ADMIN
    assert sorted([Role.ADMIN, Role.VIEWER, Role.ALERTER, Role.OPERATOR]) == [
        Role.VIEWER,
        Role.OPERATOR,
        Role.ALERTER,
        Role.ADMIN,
    ]


def test_permission_denied_names_operator_and_role() -> None:
    error = PermissionDenied(Role.ALERTER, "paul")
    assert str(error) == "paul needs the alerter role for this"
    assert (error.needed, error.operator) == (Role.ALERTER, "paul")


def test_current_operator_is_the_os_user() -> None:
    assert current_operator() == pwd.getpwuid(os.getuid()).pw_name


def test_unix_groups_include_the_primary_group() -> None:
    import grp

    me = pwd.getpwuid(os.getuid())
    assert grp.getgrgid(me.pw_gid).gr_name in unix_groups(me.pw_name)
    assert unix_groups("no-such-user-tocsin") == frozenset()


@pytest.mark.parametrize("entries", [["*"], ["root"], ["@root"]])
def test_root_matches(entries: list[str]) -> None:
    roles = RolesConfig(viewer=[], operator=[], alerter=[], admin=entries)
    assert role_for("root", unix_groups("root"), roles) is Role.ADMIN


def test_an_own_config_cannot_make_a_viewer_admin(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, capsys: pytest.CaptureFixture[str]
) -> None:
    """The hole the town found: `--config me.toml` with `[roles] admin = ["*"]`."""
    import console.config as config_module
    from console.cli import main

    system = tmp_path / "etc" / "config.toml"
    system.parent.mkdir()
    system.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "town.db"}"\n'
        f'[privacy]\nhash_key_file = "{tmp_path / "key"}"\n'
        '[roles]\nviewer = ["*"]\noperator = []\nalerter = []\nadmin = ["dsi-only"]\n',
        encoding="utf-8",
    )
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG", system)
    monkeypatch.setattr(config_module, "TRUSTED_OWNER", os.geteuid())
    own = tmp_path / "me.toml"
    own.write_text(
        f'[database]\nurl = "sqlite:///{tmp_path / "mine.db"}"\n[roles]\nadmin = ["*"]\n',
        encoding="utf-8",
    )
    own.chmod(0o666)
    capsys.readouterr()
    assert main(["--config", str(own), "contact", "add", "06 12 34 56 78"]) == 1
    err = capsys.readouterr().err
    assert "[database], [roles] of your own config ignored" in err
    assert not (tmp_path / "mine.db").exists()
    monkeypatch.setenv("TOCSIN_CONFIG", str(own))
    assert main(["send", "--topic", "alertes", "--all", "--emergency", "--text", "x", "--yes"]) == 1
    # Both refusals are in the town's audit trail, with the Unix user and the command.
    from storage.engine import make_engine

    engine = make_engine(f"sqlite:///{tmp_path / 'town.db'}")
    with Session(engine) as session:
        refused = session.exec(select(AuditEntry).where(AuditEntry.action == "refused")).all()
    engine.dispose()
    assert [r.target for r in refused] == ["add_contact", "create_campaign"]
    assert {r.operator for r in refused} == {current_operator()}
    details = json.loads(refused[1].details)
    assert details["needed"] == "alerter" and details["role"] == "viewer"
    assert details["command"].startswith("tocsin send --topic alertes --all --emergency")


def test_a_refusal_by_the_console_path_is_audited(ctx: Context) -> None:
    from console.contacts.service import ContactInput, add_contact, erase_contact

    contact = add_contact(ctx, ContactInput(number="06 12 34 56 78", name="[b]Zoé[/b]"))
    viewer = replace(ctx, operator="guichet", role=Role.VIEWER)
    with pytest.raises(PermissionDenied):
        erase_contact(viewer, contact.id, reason="demande")
    with Session(ctx.engine) as session:
        (entry,) = session.exec(select(AuditEntry).where(AuditEntry.action == "refused")).all()
    assert entry.operator == "guichet" and entry.target == "erase_contact"
    assert json.loads(entry.details) == {
        "attempted": "erase_contact",
        "needed": "admin",
        "role": "viewer",
    }
    assert all(not problems for _, problems in verify_chains(ctx.engine, ctx.hash_key).values())
