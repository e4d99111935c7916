"""Which SQLite databases this installation has created, kept beside the hash key.

SQLite makes an empty file wherever it is pointed: a database deleted by mistake
(or a typo in the path) would silently become a new, empty town, its residents,
consents and STOP list gone without a word. So a database Tocsin has created is
written down beside the key, and a missing one that is written down is refused:
restoring a backup (`tocsin db restore`) or starting afresh (`tocsin db init`) is
then the operator's explicit decision.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

MARKER_SUFFIX = ".databases"


def marker_path(key_path: Path) -> Path:
    return key_path.with_name(key_path.name + MARKER_SUFFIX)


def known(key_path: Path) -> set[str]:
    try:
        text = marker_path(key_path).read_text(encoding="utf-8")
    except OSError:
        return set()
    return {line.strip() for line in text.splitlines() if line.strip()}


def was_created(database: Path, key_path: Path) -> bool:
    return str(database.resolve()) in known(key_path)


def remember(database: Path, key_path: Path) -> None:
    """Write the database down; best effort (a key directory the user cannot write
    belongs to the service, which writes it down itself)."""
    entry = str(database.resolve())
    present = known(key_path)
    if entry in present:
        return
    marker = marker_path(key_path)
    with contextlib.suppress(OSError):
        marker.parent.mkdir(parents=True, exist_ok=True)
        descriptor = os.open(marker, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o640)
        with os.fdopen(descriptor, "a", encoding="utf-8") as out:
            out.write(entry + "\n")
