"""Which arguments of a command name files, and whether the command reads or writes
them: the client opens those for the service, and the service refuses a command
naming a file it was not handed (it would open a path an operator chose)."""

from __future__ import annotations

import argparse

# Options naming a file the command writes; every other file option is read.
OUTPUT_OPTIONS = frozenset({"rejects", "ics", "output"})
INPUT_OPTIONS = frozenset({"proof", "wording_file"})


def file_args(args: argparse.Namespace) -> list[tuple[str, str]]:
    """(path, "r" or "w") of each file the parsed command names."""
    found: list[tuple[str, str]] = []
    for dest, value in vars(args).items():
        if not isinstance(value, str) or not value or value == "-":
            continue
        if dest == "file":
            writes = args.command == "db" and getattr(args, "action", "") == "backup"
            found.append((value, "w" if writes else "r"))
        elif dest in OUTPUT_OPTIONS:
            found.append((value, "w"))
        elif dest in INPUT_OPTIONS:
            found.append((value, "r"))
    return found


def tokened(arg: str, path: str, token: str) -> str:
    """`arg` with `path` replaced by `token`, as the path may be written: alone, as
    `--option=PATH`, or glued to a short option (`-oPATH`)."""
    if arg == path:
        return token
    if arg.startswith("-") and arg.endswith(path):
        prefix = arg[: -len(path)]
        if (prefix.startswith("--") and prefix.endswith("=")) or (
            len(prefix) == 2 and prefix != "--"
        ):
            return prefix + token
    return arg
