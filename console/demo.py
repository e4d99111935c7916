"""The demo town: fictitious residents, zones, groups and consents, built in seconds.

Residents go in through the same CSV import a real town uses, so the demo shows
(and exercises) the real path.
"""

from __future__ import annotations

import csv
import random
import tempfile
from dataclasses import dataclass
from pathlib import Path

from sqlmodel import col, select

from console.bootstrap import build_context
from console.clock import Clock
from console.config import (
    Config,
    ConsoleConfig,
    DatabaseConfig,
    PrivacyConfig,
    RolesConfig,
    TownConfig,
)
from console.consent.ledger import ConsentRequest, append_consent
from console.contacts.importer import ImportOptions, import_contacts
from console.contacts.numbers import InvalidNumber, NumberParser
from console.context import Context
from console.roles import Role, current_operator
from storage.engine import write_session
from storage.models import Contact

TOWN_NAME = "Val-Tocsin"
ZONES = (
    "Centre-bourg",
    "La Gare",
    "Les Prés",
    "Le Moulin",
    "Hameau des Vignes",
    "ZA des Champs",
    "Bord de Loire",
    "Les Hauts",
)
GROUPS = (
    "parents d'élèves",
    "seniors",
    "commerçants",
    "agriculteurs",
    "associations",
    "riverains rue principale",
)
FIRST_NAMES = (
    "Camille",
    "Léa",
    "Manon",
    "Chloé",
    "Inès",
    "Jade",
    "Louise",
    "Zoé",
    "Lucas",
    "Hugo",
    "Louis",
    "Gabriel",
    "Arthur",
    "Jules",
    "Noël",
    "Raphaël",
    "Élodie",
    "Françoise",
    "Jean-Pierre",
    "Marie-Thérèse",
    "Aïcha",
    "Mamadou",
    "Yasmine",
    "Thérèse",
    "Benoît",
    "Gaëlle",
    "Loïc",
    "Maëlys",
    "Océane",
    "Joël",
    "Hélène",
    "Jérôme",
    "Cécile",
    "Hervé",
)
LAST_NAMES = (
    "Martin",
    "Bernard",
    "Dubois",
    "Thomas",
    "Robert",
    "Richard",
    "Petit",
    "Durand",
    "Leroy",
    "Moreau",
    "Simon",
    "Laurent",
    "Lefèvre",
    "Michel",
    "Garcia",
    "David",
    "Bertrand",
    "Roux",
    "Vincent",
    "Fournier",
    "Morel",
    "Girard",
    "André",
    "Mercier",
    "Dupont",
    "Lambert",
    "Bonnet",
    "François",
    "Martinez",
    "N'Diaye",
    "Le Gall",
    "Caron",
    "Ménard",
    "Barbier",
    "Brun",
    "Œuvrard",
)
# Share of residents who opted in to each consent topic, and the paper trail used.
OPT_IN = {
    "evenements": (0.45, "paper_form"),
    "travaux": (0.35, "web_form"),
    "elections": (0.25, "paper_form"),
    "infos": (0.55, "web_form"),
}


@dataclass
class DemoTown:
    folder: Path
    database_url: str
    context: Context


def demo_config(folder: Path) -> Config:
    me = current_operator()
    return Config(
        town=TownConfig(name=TOWN_NAME),
        database=DatabaseConfig(url=f"sqlite:///{folder / 'demo.db'}"),
        console=ConsoleConfig(),
        # The person trying the demo may do everything in it.
        roles=RolesConfig(admin=[me]),
        privacy=PrivacyConfig(hash_key_file=str(folder / "suppression.key")),
    )


def resident_rows(count: int, seed: int) -> list[list[str]]:
    rng = random.Random(seed)
    parser = NumberParser("FR")
    rows: list[list[str]] = []
    used: set[str] = set()
    while len(rows) < count:
        roll = rng.random()
        if roll < 0.03:
            # Landlines: kept in the base, flagged as unable to receive SMS.
            digits = f"0{rng.choice('12345')}{rng.randrange(10**8):08d}"
        elif roll < 0.04:
            digits = f"0692{rng.randrange(10**6):06d}"  # a Réunion mobile
        else:
            digits = f"0{rng.choice('6667')}{rng.randrange(10**8):08d}"
        if digits in used or not _valid(parser, digits):
            continue
        used.add(digits)
        number = " ".join(digits[i : i + 2] for i in range(0, 10, 2))
        name = f"{rng.choice(FIRST_NAMES)} {rng.choice(LAST_NAMES)}"
        groups = ", ".join(sorted(rng.sample(GROUPS, k=rng.choice((0, 0, 1, 1, 2)))))
        rows.append([name, number, rng.choice(ZONES), groups])
    return rows


def _valid(parser: NumberParser, digits: str) -> bool:
    try:
        parser.parse(digits)
    except InvalidNumber:
        return False
    return True


def _write_csv(path: Path, header: list[str], rows: list[list[str]]) -> None:
    with path.open("w", encoding="utf-8", newline="") as handle:
        writer = csv.writer(handle, delimiter=";")
        writer.writerow(header)
        writer.writerows(rows)


def build_demo_town(
    folder: Path | None = None,
    *,
    residents: int = 5000,
    seed: int = 1789,
    clock: Clock | None = None,
) -> DemoTown:
    folder = folder or Path(tempfile.mkdtemp(prefix="tocsin-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    config = demo_config(folder)
    ctx = build_context(config, clock=clock, role=Role.ADMIN)
    with write_session(ctx.engine) as session:
        populated = session.exec(select(Contact.id).limit(1)).first() is not None
    if not populated:
        _populate(ctx, folder, residents, seed)
    assert config.database.url
    return DemoTown(folder=folder, database_url=config.database.url, context=ctx)


def _populate(ctx: Context, folder: Path, residents: int, seed: int) -> None:
    rows = resident_rows(residents, seed)
    everyone = folder / "habitants.csv"
    _write_csv(everyone, ["Nom", "Téléphone", "Quartier", "Groupes"], rows)
    import_contacts(ctx, everyone, ImportOptions(source="demo"))
    rng = random.Random(seed + 1)
    for topic, (share, source) in OPT_IN.items():
        chosen = [row for row in rows if rng.random() < share]
        subset = folder / f"consent-{topic}.csv"
        _write_csv(subset, ["Téléphone"], [[row[1]] for row in chosen])
        import_contacts(
            ctx,
            subset,
            ImportOptions(
                consent_topic=topic,
                consent_source=source,
                consent_proof=f"demo-{topic}",
            ),
        )
    _withdrawals(ctx, rng)
    _replies(ctx, rows)


# What residents text back: opt-ins by keyword, a STOP, and replies an operator must
# read (the Consentements screen's review queue).
DEMO_REPLIES = (
    "OUI TRAVAUX",
    "Inscription événements",
    "STOP",
    "arrêtez svp",
    "Merci, stop",
    "S T O P",
)


def _replies(ctx: Context, rows: list[list[str]]) -> None:
    from console.sending.inbound import handle_inbound
    from console.sending.providers.base import InboundSms

    for row, text in zip(rows[7::97], DEMO_REPLIES, strict=False):
        handle_inbound(ctx, InboundSms(row[1], "", text), "simulated")


def _withdrawals(ctx: Context, rng: random.Random) -> None:
    """A few residents changed their mind, as real ones do."""
    with write_session(ctx.engine) as session:
        ids = [i for i in session.exec(select(Contact.id).order_by(col(Contact.id))) if i]
        for contact_id in rng.sample(ids, k=min(len(ids) // 50, 100)):
            topic = rng.choice(("alertes", *OPT_IN))
            append_consent(
                session,
                ctx,
                ConsentRequest(
                    contact_id=contact_id,
                    topic=topic,
                    action="withdraw",
                    source="phone_call",
                ),
            )
