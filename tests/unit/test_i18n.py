"""Both catalogs have the same keys and the same placeholders."""

from __future__ import annotations

import pytest

from console.i18n import CATALOGS, Translator, placeholders


def test_same_keys_in_every_catalog() -> None:
    fr, en = CATALOGS["fr"], CATALOGS["en"]
    assert set(fr) - set(en) == set(), "missing in en"
    assert set(en) - set(fr) == set(), "missing in fr"


@pytest.mark.parametrize("key", sorted(CATALOGS["fr"]))
def test_same_placeholders(key: str) -> None:
    assert placeholders(CATALOGS["fr"][key]) == placeholders(CATALOGS["en"][key])


def test_translator_formats_and_never_crashes_on_a_missing_key() -> None:
    t = Translator("fr")
    assert t("contacts.erased", id=7) == "Contact #7 effacé"
    assert Translator("en")("contacts.erased", id=7) == "Contact #7 erased"
    assert t("no.such.key") == "no.such.key"


def test_unknown_language_is_refused() -> None:
    with pytest.raises(ValueError):
        Translator("de")


def test_errors_are_said_in_the_operator_language(ctx) -> None:  # type: ignore[no-untyped-def]
    from console.contacts.rules import ContactError
    from console.contacts.service import ContactInput, check
    from console.roles import PermissionDenied, Role

    with pytest.raises(ContactError) as raised:
        check(ctx, ContactInput(number="06 12"))
    assert Translator("fr").error(raised.value) == "06 12 : hors du plan de numérotation"
    assert Translator("en").error(raised.value) == "06 12: not in the numbering plan"
    denied = PermissionDenied(Role.ADMIN, "marie")
    assert Translator("fr").error(denied) == "marie n'a pas le rôle administrateur requis"
    # Without a code, the English message is the fallback.
    assert Translator("fr").error(ValueError("plain")) == "plain"


def test_every_error_code_raised_has_both_translations() -> None:
    import re
    from pathlib import Path

    root = Path(__file__).resolve().parents[2] / "console"
    source = "\n".join(p.read_text(encoding="utf-8") for p in root.rglob("*.py"))
    codes = set(
        re.findall(
            r"raise (?:Contact|Consent|Campaign)Error\(.{0,300}?"
            r'"((?:contact|consent|campaign)_[a-z_]+|no_contact)"',
            source,
            re.DOTALL,
        )
    )
    assert len(codes) >= 10
    codes |= {
        f"number_{c}"
        for c in re.findall(
            r'": "([a-z_]+)",\n', source.split("_REASON_CODES = {")[1].split("}")[0]
        )
    } | {"number_scientific", "permission"}
    for code in codes:
        assert f"error.{code}" in CATALOGS["fr"], code
        assert f"error.{code}" in CATALOGS["en"], code
