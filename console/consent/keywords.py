"""Opt-in by SMS: the keywords of each topic, matched whatever the accents, case and
spacing ("oui travaux", "OUI  TRAVAUX", "Oui Travaux !")."""

from __future__ import annotations

import re

from console.config import Config
from console.text import fold

_NOT_WORD = re.compile(r"[^a-z0-9]+")


def keyword_key(text: str) -> str:
    """The letters and digits of `text`, folded, each word separated by one space."""
    return " ".join(part for part in _NOT_WORD.split(fold(text)) if part)


def keyword_table(config: Config) -> dict[str, str]:
    """Folded keyword -> topic key. The first topic to claim a keyword keeps it."""
    table: dict[str, str] = {}
    for topic in config.topics:
        for word in config.topic_keywords(topic):
            table.setdefault(keyword_key(word), topic)
    return table


def match_keyword(config: Config, text: str) -> str | None:
    """The topic a whole message opts in to, or None: a keyword inside a sentence
    ("je ne veux pas OUI TRAVAUX") is a reply for an operator, not a consent."""
    key = keyword_key(text)
    return keyword_table(config).get(key) if key else None
