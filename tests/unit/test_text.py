"""Folding for search and ordering, and the guard on anything residents typed."""

from __future__ import annotations

import unicodedata

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from console.text import clean_field, fold, visible


@pytest.mark.parametrize(
    ("text", "folded"),
    [
        ("Élodie  GARÇON", "elodie garcon"),
        ("  Noël\tLEFÈVRE ", "noel lefevre"),
        ("Œuvre des Æ", "oeuvre des ae"),
        ("STRAßE", "strasse"),
        ("Aïcha N'Diaye", "aicha n'diaye"),
        ("Ｍａｉｒｉｅ", "mairie"),  # full-width letters (NFKD)
        ("", ""),
    ],
)
def test_fold(text: str, folded: str) -> None:
    assert fold(text) == folded


def test_fold_orders_accented_names_with_plain_ones() -> None:
    names = ["Zoé", "émile", "Eric", "Édith", "ELODIE"]
    assert sorted(names, key=fold) == ["Édith", "ELODIE", "émile", "Eric", "Zoé"]


@pytest.mark.parametrize(
    ("text", "cleaned"),
    [
        # Kept as typed: the console escapes it on display, so nothing is lost.
        ("Xavier \x1b[31mRouge\x1b[0m", "Xavier \x1b[31mRouge\x1b[0m"),
        ("nul\x00byte", "nulbyte"),  # PostgreSQL text cannot hold NUL
        ("  Élodie Garçon  ", "Élodie Garçon"),
        ("[bold red]Pirate[/]", "[bold red]Pirate[/]"),  # markup is text, shown as text
        ("", ""),
    ],
)
def test_clean_field(text: str, cleaned: str) -> None:
    assert clean_field(text) == cleaned


def test_nothing_a_terminal_would_act_on_survives_visible() -> None:
    hostile = "".join(chr(c) for c in range(0x00, 0xA0)) + "\x1b[31mrouge"
    shown = visible(clean_field(hostile))
    assert not any((ord(c) < 0x20 and c not in "\t\n") or 0x7F <= ord(c) < 0xA0 for c in shown)


@pytest.mark.parametrize(
    ("text", "shown"),
    [
        ("Xavier \x1b[31mRouge\x1b[0m", "Xavier \\x1b[31mRouge\\x1b[0m"),
        ("a\x00b\x7fc\x9bd", "a\\x00b\\x7fc\\x9bd"),
        ("Élodie Garçon", "Élodie Garçon"),
        ("ligne\tun", "ligne\tun"),
    ],
)
def test_visible(text: str, shown: str) -> None:
    assert visible(text) == shown
    assert "\x1b" not in visible(text)


def _folded_whole(text: str) -> str:
    # fold's definition, on the whole string at once.
    decomposed = unicodedata.normalize("NFKD", text)
    stripped = "".join(c for c in decomposed if not unicodedata.combining(c))
    return " ".join(stripped.casefold().replace("œ", "oe").replace("æ", "ae").split())


@settings(max_examples=500)
@given(
    st.text() | st.text(alphabet=st.sampled_from(list("ÉéÈœŒæÆßİı\u0301\u0327 \t\u00a0\u2028ﬁ①ǅ")))
)
def test_fold_is_its_definition_on_the_whole_string(text: str) -> None:
    # fold works a character at a time (see its docstring): the same as decomposing,
    # dropping marks and case-folding the whole string.
    assert fold(text) == _folded_whole(text)
