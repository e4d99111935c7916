"""UI strings: one catalog per language, looked up by key.

A test checks that every catalog has the same keys and the same placeholders.
"""

from __future__ import annotations

import string
from collections.abc import Mapping

from console.locale_en import EN
from console.locale_fr import FR

CATALOGS: Mapping[str, Mapping[str, str]] = {"fr": FR, "en": EN}


class Translator:
    def __init__(self, language: str) -> None:
        if language not in CATALOGS:
            raise ValueError(f"no catalog for language {language!r}")
        self.language = language
        self._catalog = CATALOGS[language]

    def __call__(self, key: str, **values: object) -> str:
        template = self._catalog.get(key)
        if template is None:
            # A missing key is a bug the catalog test catches; never crash the UI on it.
            return key
        return template.format(**values) if values else template


def placeholders(template: str) -> frozenset[str]:
    return frozenset(
        name for _, name, _, _ in string.Formatter().parse(template) if name is not None
    )
