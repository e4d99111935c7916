"""Reading the file: its bytes, its encoding (UTF-8 with or without BOM, UTF-16,
Windows-1252, a mix of lines) and its separator."""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

from console.contacts.importer.report import ImportFailed

BAD_BYTES = re.compile("[\udc80-\udcff]")
# A lead byte and a continuation byte: any non-ASCII UTF-8 text has one.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
_EXCEL_SIGNATURES = {
    b"PK\x03\x04": "an Excel or LibreOffice workbook (.xlsx/.ods)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
}


@dataclass
class Text:
    lines: list[str]
    encoding: str
    # True when some line has bytes that mean nothing in the encodings we try.
    maybe_bad: bool


# No resident's row is this long: past it the file is not a CSV (`/dev/zero`, a
# binary), and reading on would only fill the memory.
MAX_LINE_BYTES = 64 * 1024
_BLOCK = 1024 * 1024


def _read_capped(path: Path) -> bytes:
    """The file's bytes, refused as soon as one line runs past MAX_LINE_BYTES."""
    blocks: list[bytes] = []
    line_number, line_length = 1, 0
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            blocks.append(block)
            # The part after the block's last newline carries over to the next
            # block. UTF-16 newlines hold the same 0x0A byte, so this counts them too.
            lines = block.split(b"\n")
            line_length += len(lines[0])
            longest, where = line_length, line_number
            for offset, line in enumerate(lines[1:], start=1):
                if len(line) > longest:
                    longest, where = len(line), line_number + offset
            line_number += len(lines) - 1
            line_length = len(lines[-1]) if len(lines) > 1 else line_length
            if longest > MAX_LINE_BYTES:
                raise ImportFailed(
                    f"{path}: line {where} is longer than {MAX_LINE_BYTES // 1024} KiB: "
                    "this is not a residents' CSV file"
                )
    return b"".join(blocks)


def read_bytes(path: Path) -> bytes:
    try:
        data = _read_capped(path)
    except FileNotFoundError as exc:
        raise ImportFailed(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise ImportFailed(f"{path}: is a directory, not a CSV file") from exc
    except PermissionError as exc:
        raise ImportFailed(f"{path}: permission denied (cannot read the file)") from exc
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from exc
    for signature, what in _EXCEL_SIGNATURES.items():
        if data.startswith(signature):
            raise ImportFailed(
                f"{path}: this is {what}, not a CSV file; in the spreadsheet use "
                "File > Save as > CSV (separator: semicolon)"
            )
    return data


def _split(text: str) -> list[str]:
    # Lines end at \r, \n or \r\n only, as csv expects with newline="".
    return list(io.StringIO(text, newline=""))


def decode(path: Path, data: bytes) -> Text:
    if data.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        # Excel's "Unicode text" export.
        try:
            return Text(_split(data.decode("utf-16")), "utf-16", False)
        except UnicodeDecodeError as exc:
            raise ImportFailed(f"{path}: not valid UTF-16 ({exc.reason})") from exc
    encoding = "utf-8"
    if data.startswith(codecs.BOM_UTF8):
        data, encoding = data[len(codecs.BOM_UTF8) :], "utf-8-sig"
    try:
        return Text(_split(data.decode("utf-8")), encoding, False)
    except UnicodeDecodeError:
        pass
    # Windows-1252. Bytes it leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d) become
    # lone surrogates, so that their row is rejected and not the whole file.
    if _UTF8_SEQUENCE.search(data) is None:
        text = data.decode("cp1252", errors="surrogateescape")
        return Text(_split(text), "cp1252", BAD_BYTES.search(text) is not None)
    # Some lines look like UTF-8 (pasted from another file): decode line by line.
    lines: list[str] = []
    maybe_bad = False
    # bytes.splitlines breaks at \r, \n and \r\n only, like _split.
    for raw in data.splitlines(keepends=True):
        try:
            lines.append(raw.decode("utf-8"))
        except UnicodeDecodeError:
            line = raw.decode("cp1252", errors="surrogateescape")
            maybe_bad = maybe_bad or BAD_BYTES.search(line) is not None
            lines.append(line)
    return Text(lines, "cp1252", maybe_bad)


def _count_outside_quotes(line: str, char: str) -> int:
    count, quoted = 0, False
    for c in line:
        if c == '"':
            quoted = not quoted
        elif c == char and not quoted:
            count += 1
    return count


def detect_delimiter(lines: Sequence[str]) -> str:
    """The separator the header line uses most (then the first data lines)."""
    candidates = (";", "\t", ",")  # ties go to the French Excel habit
    sample = [line for line in lines[:20] if line.strip()][:6]
    for line in sample:
        count, best = max((_count_outside_quotes(line, c), -i) for i, c in enumerate(candidates))
        if count > 0:
            return candidates[-best]
    return ";"
