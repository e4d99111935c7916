"""Everything a service call needs, built once by the entry point and passed in."""

from __future__ import annotations

import logging
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from console.clock import Clock
from console.config import Config, data_dir
from console.consent.suppression import HashKeyError, key_fingerprint, load_or_create_key
from console.roles import PermissionDenied, Role
from storage.engine import read_session, write_session
from storage.faults import database_errors

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from console.contacts.numbers import NumberParser

# The ORM, phonenumbers and the hash chains are loaded by the first Context, not by
# importing this module: `tocsin status` reads without them (console.bootstrap).

log = logging.getLogger("tocsin.roles")


@dataclass
class Context:
    engine: Engine
    config: Config
    clock: Clock
    operator: str
    role: Role
    hash_key: bytes
    # What the operator asked for, for the audit of a refusal (the CLI's command line).
    attempt: str = ""
    parser: NumberParser = field(init=False)

    def __post_init__(self) -> None:
        from console.contacts.numbers import NumberParser
        from storage.chain import use_chain_key

        self.parser = NumberParser(self.config.town.region)
        # The hash chains are keyed with sub-keys of the same key: whatever session
        # of this engine appends to them does so under it.
        use_chain_key(self.engine, self.hash_key)

    def require(self, needed: Role) -> None:
        """Refuse, and audit the refusal, when the operator's role is below `needed`."""
        if self.role >= needed:
            return
        # The domain function that asked: what was attempted, by whichever path.
        attempted = sys._getframe(1).f_code.co_name
        self.audit_refusal(needed, attempted)
        raise PermissionDenied(needed, self.operator)

    def audit_refusal(self, needed: Role, attempted: str) -> None:
        """Record in the audit trail that the operator was refused `attempted`."""
        details = {
            "attempted": attempted,
            "needed": needed.name.lower(),
            "role": self.role.name.lower(),
        }
        if self.attempt:
            details["command"] = self.attempt[:500]
        from console.audit import append_audit

        try:
            with write_session(self.engine) as session:
                append_audit(
                    session,
                    at=self.clock.now(),
                    operator=self.operator,
                    action="refused",
                    target=attempted,
                    details=details,
                )
        except database_errors() as exc:
            # The refusal stands; the journal of the service is the last witness.
            log.warning("refusal of %s to %s not audited: %s", self.operator, attempted, exc)

    @property
    def topics(self) -> list[str]:
        return list(self.config.topics)


def hash_key_path(config: Config) -> Path:
    return Path(config.privacy.hash_key_file or data_dir() / "suppression.key")


def load_hash_key(engine: Engine, path: Path) -> bytes:
    """Load the key and check it is the one this database was started with."""
    from storage.models import Meta

    key = load_or_create_key(path)
    fingerprint = key_fingerprint(key)
    with read_session(engine) as session:
        stored = session.get(Meta, "hash_key_fingerprint")
    if stored is not None and stored.value == fingerprint:
        return key
    with write_session(engine) as session:
        stored = session.get(Meta, "hash_key_fingerprint")
        if stored is None:
            session.add(Meta(key="hash_key_fingerprint", value=fingerprint))
        elif stored.value != fingerprint:
            raise HashKeyError(
                f"{path}: this is not the hash key this database was created with; "
                "restore the original key file (the suppression list depends on it)"
            )
    return key


def wanted_topics(config: Config) -> set[tuple[str, str, str]]:
    """The Topic rows the config asks for: (key, label, legal basis)."""
    return {(key, topic.label, topic.legal_basis) for key, topic in config.topics.items()}


def sync_topics(engine: Engine, config: Config) -> None:
    """Make the Topic table match config; topics in use are never deleted."""
    from sqlmodel import select

    from storage.models import Topic

    wanted = wanted_topics(config)
    with read_session(engine) as session:
        present = {(t.key, t.label, t.legal_basis) for t in session.exec(select(Topic)).all()}
    if wanted <= present:
        # Nothing to write: `tocsin status` still answers while someone holds the
        # write lock or the disk is full.
        return
    with write_session(engine) as session:
        existing = {t.key: t for t in session.exec(select(Topic)).all()}
        for key, topic in config.topics.items():
            row = existing.get(key)
            if row is None:
                session.add(Topic(key=key, label=topic.label, legal_basis=topic.legal_basis))
            else:
                row.label, row.legal_basis = topic.label, topic.legal_basis
                session.add(row)
