"""The frames the row checker's child sends its parent: a kind byte, a length, a
pickle.

Rows go as their pickle, unpickled by the parent's writer thread, not by the
thread that reads the pipe: SQLite's executemany gives up the GIL around every
row, and a thread of the same process busy unpickling 5,000 rows made each
row wait for the interpreter's switch interval to get it back (measured: 300,000
rows written in 2.8 s alone, 4.5 s beside a thread busy a third of the time).
So the reading thread only reads bytes, and unpickles the small frames (issues,
the end).
"""

from __future__ import annotations

import pickle
import struct
from typing import IO, Any

ROWS = b"R"  # a chunk of good rows, list[Good]
ISSUES = b"I"  # the issues found since the frame before, list[RowIssue]
DONE = b"D"  # the number of rows read; the last frame
FAILED = b"F"  # the exception that stopped the checking; the last frame

_HEAD = struct.Struct(">cI")


def send(out: IO[bytes], kind: bytes, payload: Any) -> None:
    data = pickle.dumps(payload, pickle.HIGHEST_PROTOCOL)
    out.write(_HEAD.pack(kind, len(data)))
    out.write(data)


def receive(frames: IO[bytes]) -> tuple[bytes, bytes]:
    """The next frame's kind and its pickle; EOFError when the child stopped."""
    head = frames.read(_HEAD.size)
    if len(head) < _HEAD.size:
        raise EOFError("no more frames")
    kind, size = _HEAD.unpack(head)
    data = frames.read(size)
    if len(data) < size:
        raise EOFError("a frame cut short")
    return kind, data
