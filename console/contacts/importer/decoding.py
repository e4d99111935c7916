"""Reading the file: its encoding (UTF-8 with or without BOM, UTF-16, Windows-1252,
a mix of lines) and its separator, without holding it in memory.

The file is read twice: a first pass over its bytes (a block at a time) checks what
can refuse it (a workbook, an endless line, invalid UTF-16) and decides the
encoding; then `Text.lines()` decodes it a line at a time, as often as asked.
"""

from __future__ import annotations

import codecs
import io
import re
from collections.abc import Generator, Iterator, Sequence
from dataclasses import dataclass, field
from pathlib import Path

from console.contacts.importer.report import ImportFailed

BAD_BYTES = re.compile("[\udc80-\udcff]")
# A lead byte and a continuation byte: any non-ASCII UTF-8 text has one.
_UTF8_SEQUENCE = re.compile(rb"[\xc2-\xf4][\x80-\xbf]")
# The bytes Windows-1252 leaves undefined (they decode to lone surrogates).
_CP1252_UNDEFINED = re.compile(rb"[\x81\x8d\x8f\x90\x9d]")
_EXCEL_SIGNATURES = {
    b"PK\x03\x04": "an Excel or LibreOffice workbook (.xlsx/.ods)",
    b"\xd0\xcf\x11\xe0": "an old Excel workbook (.xls)",
}
# Lines kept from the start of the file to detect the separator.
HEAD_LINES = 20


@dataclass
class Text:
    path: Path
    encoding: str
    # True when some line may have bytes that mean nothing in the encodings we try
    # (each row is then checked; False means none can have).
    maybe_bad: bool
    # "utf-16", "utf-8", "utf-8-sig", "cp1252" or "mixed" (a line at a time).
    mode: str
    # Bytes to skip at the start (a UTF-8 BOM before Windows-1252 text).
    skip: int = 0
    head: list[str] = field(default_factory=list)

    def lines(self) -> Generator[str, None, None]:
        """The file's lines, ending at \\r, \\n or \\r\\n only, as csv expects."""
        with self.path.open("rb") as handle:
            handle.read(self.skip)
            if self.mode == "mixed":
                # Some lines look like UTF-8 (pasted from another file): decode each.
                for raw in _split_bytes(handle):
                    try:
                        yield raw.decode("utf-8")
                    except UnicodeDecodeError:
                        yield raw.decode("cp1252", errors="surrogateescape")
                return
            errors = "surrogateescape" if self.mode == "cp1252" else "strict"
            with io.TextIOWrapper(handle, encoding=self.mode, errors=errors, newline="") as text:
                yield from text


_LINE_END = re.compile(rb"\r\n|\r|\n")


def _split_bytes(handle: io.BufferedIOBase) -> Iterator[bytes]:
    """Lines of a binary file, ending at \\r, \\n or \\r\\n like bytes.splitlines."""
    rest = b""
    while block := handle.read(_BLOCK):
        data = rest + block
        start = 0
        for match in _LINE_END.finditer(data):
            if match.end() == len(data) and data.endswith(b"\r"):
                break  # a \r\n may be cut between two blocks
            yield data[start : match.end()]
            start = match.end()
        rest = data[start:]
    if rest:
        yield rest


# No resident's row is this long: past it the file is not a CSV (`/dev/zero`, a
# binary), and reading on would only fill the memory.
MAX_LINE_BYTES = 64 * 1024
_BLOCK = 1024 * 1024


def _scan(path: Path) -> Text:
    """One pass over the bytes: refuse what is no CSV, decide the encoding."""
    line_number, line_length = 1, 0
    utf8 = codecs.getincrementaldecoder("utf-8")()
    utf16 = codecs.getincrementaldecoder("utf-16")()
    valid_utf8 = True
    utf8_sequence = undefined = False
    empty = True
    first = b""
    previous = b""
    with path.open("rb") as handle:
        while block := handle.read(_BLOCK):
            if not first:
                first = block[:4]
                for signature, what in _EXCEL_SIGNATURES.items():
                    if block.startswith(signature):
                        raise ImportFailed(
                            f"{path}: this is {what}, not a CSV file; in the spreadsheet use "
                            "File > Save as > CSV (separator: semicolon)"
                        )
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
            empty = empty and not block.strip()
            if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
                try:
                    utf16.decode(block)
                except UnicodeDecodeError as exc:
                    raise ImportFailed(f"{path}: not valid UTF-16 ({exc.reason})") from exc
                continue
            if valid_utf8:
                try:
                    utf8.decode(block)
                except UnicodeDecodeError:
                    valid_utf8 = False
            # A UTF-8 BOM says nothing of the lines after it.
            joined = block[3:] if previous == b"" and block.startswith(codecs.BOM_UTF8) else block
            joined = previous + joined
            utf8_sequence = utf8_sequence or _UTF8_SEQUENCE.search(joined) is not None
            undefined = undefined or _CP1252_UNDEFINED.search(block) is not None
            previous = block[-1:]
    if empty:
        raise ImportFailed(f"{path}: the file is empty")
    if first.startswith((codecs.BOM_UTF16_LE, codecs.BOM_UTF16_BE)):
        try:
            utf16.decode(b"", final=True)
        except UnicodeDecodeError as exc:
            raise ImportFailed(f"{path}: not valid UTF-16 ({exc.reason})") from exc
        # Excel's "Unicode text" export.
        return _with_head(Text(path, "utf-16", False, "utf-16"))
    if valid_utf8:
        try:
            utf8.decode(b"", final=True)
        except UnicodeDecodeError:
            valid_utf8 = False
    if valid_utf8:
        encoding = "utf-8-sig" if first.startswith(codecs.BOM_UTF8) else "utf-8"
        return _with_head(Text(path, encoding, False, encoding))
    skip = len(codecs.BOM_UTF8) if first.startswith(codecs.BOM_UTF8) else 0
    # Windows-1252. Bytes it leaves undefined (0x81, 0x8d, 0x8f, 0x90, 0x9d) become
    # lone surrogates, so that their row is rejected and not the whole file.
    if not utf8_sequence:
        return _with_head(Text(path, "cp1252", undefined, "cp1252", skip))
    # Some lines look like UTF-8 (pasted from another file): decoded line by line.
    return _with_head(Text(path, "cp1252", undefined, "mixed", skip))


def _with_head(text: Text) -> Text:
    lines = text.lines()
    try:
        for line in lines:
            text.head.append(line)
            if len(text.head) >= HEAD_LINES:
                break
    finally:
        lines.close()
    return text


def scan(path: Path) -> Text:
    try:
        return _scan(path)
    except FileNotFoundError as exc:
        raise ImportFailed(f"{path}: file not found") from exc
    except IsADirectoryError as exc:
        raise ImportFailed(f"{path}: is a directory, not a CSV file") from exc
    except PermissionError as exc:
        raise ImportFailed(f"{path}: permission denied (cannot read the file)") from exc
    except OSError as exc:
        raise ImportFailed(f"{path}: cannot read: {exc.strerror or exc}") from exc


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
