"""Provider secrets: from the environment, or a TOML file only the service user can read.

The file named by `provider.credentials_file` holds one table per owner of a secret:

    [kannel]     password = "..."
    [twilio]     auth_token = "..."
    [octopush]   api_key = "..."
    [smsfactor]  token = "..."
    [endpoint]   token = "..."    # the secret in the report/inbound URLs we hand out

`TOCSIN_<TABLE>_<KEY>` environment variables (TOCSIN_TWILIO_AUTH_TOKEN...) win over the
file, so a systemd unit can inject them without a file at all. Secrets never reach the
database, a log line or a repr.
"""

from __future__ import annotations

import os
import stat
import tomllib
from collections.abc import Mapping
from pathlib import Path

from console.config import ProviderConfig

# Every secret Tocsin knows of, as (table, key). Anything else in the file is a typo
# that would otherwise surface much later as a "missing credential".
KNOWN: frozenset[tuple[str, str]] = frozenset(
    {
        ("kannel", "password"),
        ("twilio", "auth_token"),
        ("octopush", "api_key"),
        ("smsfactor", "token"),
        ("endpoint", "token"),
    }
)


class CredentialsError(Exception):
    """A credentials problem, already phrased as the one line the user sees."""


def env_name(provider: str, key: str) -> str:
    return f"TOCSIN_{provider}_{key}".upper()


class Credentials:
    """The secrets at hand; `get` names where to put a missing one."""

    __slots__ = ("_source", "_values")

    def __init__(self, values: Mapping[tuple[str, str], str], source: str = "") -> None:
        # Empty strings count as absent: an unset variable in a systemd EnvironmentFile
        # comes through as "".
        self._values = {name: value for name, value in values.items() if value}
        self._source = source

    @property
    def source(self) -> str:
        """The credentials file these came from ("" when there is none)."""
        return self._source

    def has(self, provider: str, key: str) -> bool:
        return (provider, key) in self._values

    def get(self, provider: str, key: str) -> str:
        try:
            return self._values[(provider, key)]
        except KeyError:
            where = self._source or "the file named by provider.credentials_file"
            raise CredentialsError(
                f"missing credential: {provider}.{key} "
                f"(set {env_name(provider, key)} or add it to {where})"
            ) from None

    def __repr__(self) -> str:
        names = ", ".join(f"{p}.{k}=***" for p, k in sorted(self._values))
        return f"Credentials(source={self._source!r}, {names or 'empty'})"

    __str__ = __repr__

    def __reduce__(self) -> tuple[object, ...]:
        # Pickling would write the secrets wherever the pickle goes (multiprocessing,
        # caches): refuse rather than leak.
        raise TypeError("Credentials cannot be pickled")


def _read_file(path: Path) -> dict[tuple[str, str], str]:
    try:
        # Check the mode on the descriptor we read from, so the file cannot be
        # swapped between the check and the read (and never block on a FIFO).
        flags = os.O_RDONLY | getattr(os, "O_CLOEXEC", 0) | getattr(os, "O_NONBLOCK", 0)
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise CredentialsError(f"{path}: credentials file not found") from None
    except OSError as exc:
        raise CredentialsError(
            f"{path}: cannot read the credentials file: {exc.strerror or exc}"
        ) from None
    try:
        info = os.fstat(fd)
        if not stat.S_ISREG(info.st_mode):
            raise CredentialsError(f"{path}: the credentials file is not a regular file")
        mode = stat.S_IMODE(info.st_mode)
        if mode & 0o077:
            raise CredentialsError(
                f"{path}: the credentials file is open to other users (mode {mode:04o}); "
                f"run chmod 600 {path}"
            )
        chunks: list[bytes] = []
        while chunk := os.read(fd, 65536):
            chunks.append(chunk)
    except OSError as exc:
        raise CredentialsError(
            f"{path}: cannot read the credentials file: {exc.strerror or exc}"
        ) from None
    finally:
        os.close(fd)
    raw = b"".join(chunks)
    try:
        document = tomllib.loads(raw.decode("utf-8"))
    except (UnicodeDecodeError, tomllib.TOMLDecodeError) as exc:
        # The decoder's message quotes the position, never the secret text.
        raise CredentialsError(f"{path}: not valid TOML: {exc}") from None
    values: dict[tuple[str, str], str] = {}
    for table, content in document.items():
        if not isinstance(content, dict):
            raise CredentialsError(f"{path}: '{table}' should be a table such as [{table}]")
        for key, value in content.items():
            if (table, key) not in KNOWN:
                known = ", ".join(f"{t}.{k}" for t, k in sorted(KNOWN))
                raise CredentialsError(
                    f"{path}: unknown key '{table}.{key}' (expected one of {known})"
                )
            if not isinstance(value, str):
                raise CredentialsError(f"{path}: key '{table}.{key}': expected a string")
            values[(table, key)] = value
    return values


def load_credentials(config: ProviderConfig, environ: Mapping[str, str]) -> Credentials:
    """The file's secrets overlaid with the environment's. Raises CredentialsError."""
    values: dict[tuple[str, str], str] = {}
    source = ""
    if config.credentials_file:
        path = Path(config.credentials_file).expanduser()
        source = str(path)
        values.update(_read_file(path))
    for provider, key in KNOWN:
        from_env = environ.get(env_name(provider, key), "")
        if from_env:
            values[(provider, key)] = from_env
    return Credentials(values, source)
