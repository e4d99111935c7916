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
