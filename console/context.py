"""Everything a service call needs, built once by the entry point and passed in."""

from __future__ import annotations

from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING

from console.clock import Clock
from console.config import Config, data_dir
from console.consent.suppression import HashKeyError, key_fingerprint, load_or_create_key
from console.roles import PermissionDenied, Role
from storage.engine import read_session, write_session

if TYPE_CHECKING:
    from sqlalchemy import Engine

    from console.contacts.numbers import NumberParser

# The ORM, phonenumbers and the hash chains are loaded by the first Context, not by
# importing this module: `tocsin status` reads without them (console.bootstrap).


@dataclass
class Context:
    engine: Engine
    config: Config
    clock: Clock
    operator: str
    role: Role
    hash_key: bytes
    parser: NumberParser = field(init=False)

    def __post_init__(self) -> None:
        from console.contacts.numbers import NumberParser
        from storage.chain import use_chain_key

        self.parser = NumberParser(self.config.town.region)
        # The hash chains are keyed with sub-keys of the same key: whatever session
        # of this engine appends to them does so under it.
        use_chain_key(self.engine, self.hash_key)

    def require(self, needed: Role) -> None:
        if self.role < needed:
            raise PermissionDenied(needed, self.operator)

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
