"""Plain reads from PostgreSQL through libpq itself (ctypes), for `tocsin status`.

`tocsin status` is a process of its own, asked every few seconds by scripts and
monitoring. Importing psycopg (its adapters, its asyncio support, its hundreds of
error classes) is about 0.1 s of it, where loading the libpq psycopg ships with
takes 3 ms. So the command's few reads go to libpq straight: parameters sent as
text (the server types them), results read as text and converted by column type.

Whatever this cannot do (no libpq found, a connection or a statement refused, a
type it does not convert, a date style other than ISO) raises LibpqError, and the
caller takes the engine's way, whose error the command words. The connection
string is libpq's own (a `postgresql://` URI), read as psycopg would hand it over.
"""

from __future__ import annotations

import ctypes
from collections.abc import Sequence
from datetime import datetime
from decimal import Decimal
from pathlib import Path
from types import TracebackType
from typing import Any

# Statuses and result kinds, from libpq-fe.h.
_CONNECTION_OK = 0
_PGRES_COMMAND_OK = 1
_PGRES_TUPLES_OK = 2

# Type oids (pg_type.dat) and how their text reads in Python.
_INTEGERS = {20, 21, 23, 26}  # int8, int2, int4, oid
_TEXTS = {18, 19, 25, 1042, 1043}  # char, name, text, bpchar, varchar
_TIMES = {1114, 1184}  # timestamp, timestamptz (in the ISO date style)


class LibpqError(Exception):
    """libpq is not there, or refused; the caller reads another way."""


_lib: ctypes.CDLL | None = None


def _candidates() -> list[str]:
    """The libpq psycopg's binary package ships (the one psycopg itself uses), then
    the system's, by its soname (ctypes.util.find_library would run ldconfig)."""
    import importlib.util

    found: list[str] = []
    spec = importlib.util.find_spec("psycopg_binary")
    if spec is not None and spec.submodule_search_locations:
        package = Path(next(iter(spec.submodule_search_locations)))
        for folder, pattern in (
            (package.parent / "psycopg_binary.libs", "libpq-*.so*"),  # Linux wheels
            (package / ".dylibs", "libpq*.dylib"),  # macOS wheels
        ):
            found.extend(sorted(str(path) for path in folder.glob(pattern)))
    return [*found, "libpq.so.5", "libpq.5.dylib"]


def _library() -> ctypes.CDLL:
    global _lib
    if _lib is not None:
        return _lib
    for name in _candidates():
        try:
            lib = ctypes.CDLL(name)
        except OSError:
            continue
        _declare(lib)
        _lib = lib
        return lib
    raise LibpqError("libpq not found")


def _declare(lib: ctypes.CDLL) -> None:
    p, s, i = ctypes.c_void_p, ctypes.c_char_p, ctypes.c_int
    signatures: dict[str, tuple[Any, list[Any]]] = {
        "PQconnectdb": (p, [s]),
        "PQstatus": (i, [p]),
        "PQerrorMessage": (s, [p]),
        "PQparameterStatus": (s, [p, s]),
        "PQsetClientEncoding": (i, [p, s]),
        "PQfinish": (None, [p]),
        "PQexecParams": (
            p,
            [p, s, i, ctypes.c_void_p, ctypes.POINTER(s), ctypes.c_void_p, ctypes.c_void_p, i],
        ),
        "PQresultStatus": (i, [p]),
        "PQresultErrorMessage": (s, [p]),
        "PQntuples": (i, [p]),
        "PQnfields": (i, [p]),
        "PQftype": (ctypes.c_uint, [p, i]),
        "PQgetisnull": (i, [p, i, i]),
        "PQgetvalue": (s, [p, i, i]),
        "PQclear": (None, [p]),
    }
    for name, (restype, argtypes) in signatures.items():
        function = getattr(lib, name)
        function.restype = restype
        function.argtypes = argtypes


def _text(value: bytes | None) -> str:
    return (value or b"").decode("utf-8", "replace").strip()


class Connection:
    """One connection, in autocommit: each statement reads its own snapshot, as each
    of psycopg's does in a READ COMMITTED transaction."""

    def __init__(self, conninfo: str) -> None:
        self._lib = _library()
        self._conn: int | None = self._lib.PQconnectdb(conninfo.encode())
        if not self._conn:
            raise LibpqError("out of memory")
        try:
            if self._lib.PQstatus(self._conn) != _CONNECTION_OK:
                raise LibpqError(_text(self._lib.PQerrorMessage(self._conn)))
            if self._parameter("client_encoding") != "UTF8" and self._lib.PQsetClientEncoding(
                self._conn, b"UTF8"
            ):
                raise LibpqError(_text(self._lib.PQerrorMessage(self._conn)))
            # Times read back in the one style converted here.
            if not self._parameter("DateStyle").startswith("ISO"):
                raise LibpqError(f"date style {self._parameter('DateStyle')}")
        except BaseException:
            self.close()
            raise

    def _parameter(self, name: str) -> str:
        return _text(self._lib.PQparameterStatus(self._conn, name.encode()))

    def execute(self, sql: str, params: Sequence[object] = ()) -> list[tuple[Any, ...]]:
        """The rows of `sql`, whose parameters are $1, $2..."""
        if self._conn is None:
            raise LibpqError("connection closed")
        values = (ctypes.c_char_p * max(len(params), 1))(*(_param(p) for p in params))
        result = self._lib.PQexecParams(
            self._conn, sql.encode(), len(params), None, values, None, None, 0
        )
        if not result:
            raise LibpqError(_text(self._lib.PQerrorMessage(self._conn)))
        try:
            status = self._lib.PQresultStatus(result)
            if status == _PGRES_COMMAND_OK:
                return []
            if status != _PGRES_TUPLES_OK:
                raise LibpqError(_text(self._lib.PQresultErrorMessage(result)))
            columns = [
                _converter(self._lib.PQftype(result, c)) for c in range(self._lib.PQnfields(result))
            ]
            return [
                tuple(
                    None
                    if self._lib.PQgetisnull(result, r, c)
                    else convert(self._lib.PQgetvalue(result, r, c).decode())
                    for c, convert in enumerate(columns)
                )
                for r in range(self._lib.PQntuples(result))
            ]
        except (ValueError, UnicodeDecodeError) as exc:
            raise LibpqError(f"unreadable value: {exc}") from exc
        finally:
            self._lib.PQclear(result)

    def close(self) -> None:
        if self._conn is not None:
            self._lib.PQfinish(self._conn)
            self._conn = None

    def __enter__(self) -> Connection:
        return self

    def __exit__(
        self,
        kind: type[BaseException] | None,
        value: BaseException | None,
        traceback: TracebackType | None,
    ) -> None:
        self.close()


def connect(conninfo: str) -> Connection:
    """A connection to the database `conninfo` names, or LibpqError."""
    return Connection(conninfo)


def _param(value: object) -> bytes | None:
    if value is None:
        return None
    if isinstance(value, bool):
        return b"true" if value else b"false"
    if isinstance(value, datetime):
        return value.isoformat().encode()
    if isinstance(value, str | int | Decimal):
        return str(value).encode()
    raise LibpqError(f"no text form for {type(value).__name__}")


def _boolean(text: str) -> bool:
    return text == "t"


def _converter(oid: int) -> Any:
    if oid in _INTEGERS:
        return int
    if oid in _TEXTS:
        return str
    if oid in _TIMES:
        return datetime.fromisoformat
    if oid == 16:
        return _boolean
    if oid == 1700:
        return Decimal
    if oid in (700, 701):
        return float
    raise LibpqError(f"no conversion for type oid {oid}")
