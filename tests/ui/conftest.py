"""UI fixtures: a small, deterministic town and an app factory."""

from __future__ import annotations

from collections.abc import Callable

import pytest
from sqlalchemy import Engine

from console.clock import FrozenClock
from console.config import Config, ConsoleConfig
from console.consent.ledger import ConsentRequest, record_consent
from console.contacts.service import ContactInput, add_contact
from console.context import Context
from console.roles import Role
from screens.app import TocsinApp
from tests.conftest import make_context

ZONES = ("Centre-bourg", "La Gare", "Les Prés", "Le Moulin")
FIRST = ("Camille", "Élodie", "Hugo", "Noël", "Aïcha", "Benoît", "Zoé", "Jérôme")
LAST = ("Martin", "Garçon", "Lefèvre", "N'Diaye", "Dubois", "Ménard")

# A name that would be markup, and one carrying a terminal escape sequence.
HOSTILE_NAMES = ("[bold red]Pirate[/] Dupont", "Xavier \x1b[31mRouge\x1b[0m")


def seed_town(ctx: Context, count: int = 40) -> None:
    for i in range(count):
        contact = add_contact(
            ctx,
            ContactInput(
                number=f"06 12 34 {i // 10:02d} {i % 10 + 10:02d}",
                name=f"{FIRST[i % len(FIRST)]} {LAST[i % len(LAST)]}",
                zone=ZONES[i % len(ZONES)],
                groups=("seniors",) if i % 3 == 0 else ("parents d'élèves",) if i % 3 == 1 else (),
            ),
        )
        assert contact.id is not None
        if i % 2 == 0:
            record_consent(
                ctx,
                ConsentRequest(
                    contact_id=contact.id,
                    topic="evenements",
                    action="grant",
                    source="paper_form",
                    proof_ref=f"F-{i}",
                ),
            )
        if i % 7 == 0:
            record_consent(
                ctx,
                ConsentRequest(
                    contact_id=contact.id,
                    topic="alertes",
                    action="withdraw",
                    source="phone_call",
                ),
            )
    add_contact(
        ctx, ContactInput(number="01 42 76 40 40", name="Mairie annexe", zone="Centre-bourg")
    )
    for i, name in enumerate(HOSTILE_NAMES):
        add_contact(ctx, ContactInput(number=f"07 81 00 00 0{i}", name=name, zone="La Gare"))


AppFactory = Callable[..., TocsinApp]


@pytest.fixture
def town(engine: Engine, clock: FrozenClock) -> Context:
    ctx = make_context(engine, Config(), clock)
    seed_town(ctx)
    return ctx


@pytest.fixture
def make_app(engine: Engine, clock: FrozenClock, town: Context) -> AppFactory:
    """An app on the seeded town; pass role, language, keymap or page_size to vary it."""

    def factory(
        role: Role = Role.ADMIN,
        language: str = "fr",
        keymap: dict[str, str] | None = None,
        page_size: int = 100,
        start_mode: str = "contacts",
    ) -> TocsinApp:
        config = Config(
            console=ConsoleConfig(language=language, keymap=keymap or {}, page_size=page_size)
        )  # type: ignore[arg-type]
        ctx = make_context(engine, config, clock, role=role)
        return TocsinApp(ctx, start_mode=start_mode)

    return factory
