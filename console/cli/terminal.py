"""Output that reaches a terminal never carries control characters from the data.

Names, notes, a provider's reasons, anything read from the database may hold an
escape sequence that would retitle the window, clear the screen or worse when
printed raw. While a verb runs, standard output and standard error that are
terminals are wrapped so every write shows such characters escaped (`\\x1b`);
written to a file or a pipe, output stays byte for byte what the verb wrote (an
exported CSV re-imports unchanged). JSON output escapes them in every case, as
JSON allows, so it is safe on a terminal and still decodes to the same data.
"""

from __future__ import annotations

import contextlib
import io
import json
import re
import sys
from collections.abc import Iterator
from typing import TextIO

from console.text import visible

# What json.dumps(ensure_ascii=False) leaves raw: DEL and the C1 controls (U+009B
# is a one-character CSI on many terminals). It escapes C0 itself.
_JSON_RAW_CONTROLS = re.compile("[\x7f-\x9f]")


def json_text(data: object) -> str:
    text = json.dumps(data, ensure_ascii=False, indent=2, sort_keys=True)
    return _JSON_RAW_CONTROLS.sub(lambda m: f"\\u{ord(m.group()):04x}", text)


class VisibleStream(io.TextIOBase):
    """A text stream that escapes control characters on their way to `target`.

    Line ends stay line ends: CRLF (the CSV's) is written as a newline; a CR alone
    is escaped like any other control character.
    """

    def __init__(self, target: TextIO) -> None:
        self._target = target

    def write(self, text: str) -> int:
        self._target.write(visible(text.replace("\r\n", "\n")))
        return len(text)

    def flush(self) -> None:
        self._target.flush()

    def isatty(self) -> bool:
        return True

    def fileno(self) -> int:
        return self._target.fileno()

    def writable(self) -> bool:
        return True

    @property
    def encoding(self) -> str:  # type: ignore[override]
        return getattr(self._target, "encoding", None) or "utf-8"


def _is_terminal(stream: TextIO) -> bool:
    try:
        return stream.isatty()
    except (AttributeError, ValueError):
        return False


@contextlib.contextmanager
def guarded_terminal() -> Iterator[None]:
    """While inside, stdout and stderr escape control characters if they are terminals."""
    saved = sys.stdout, sys.stderr
    if _is_terminal(sys.stdout):
        sys.stdout = VisibleStream(sys.stdout)
    if _is_terminal(sys.stderr):
        sys.stderr = VisibleStream(sys.stderr)
    try:
        yield
    finally:
        sys.stdout, sys.stderr = saved
