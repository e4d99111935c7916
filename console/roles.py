"""Who may do what: roles from config, matched against the Unix user and groups."""

from __future__ import annotations

import contextlib
import grp
import os
import pwd
from enum import IntEnum

from console.config import RolesConfig


class Role(IntEnum):
    # Ordered: each role may do everything the ones below it may.
    NONE = 0
    VIEWER = 1
    OPERATOR = 2
    ALERTER = 3
    ADMIN = 4


class PermissionDenied(Exception):
    def __init__(self, needed: Role, operator: str) -> None:
        super().__init__(f"{operator} needs the {needed.name.lower()} role for this")
        self.needed = needed
        self.operator = operator
        self.code = "permission"
        self.params = {"operator": operator, "role_code": f"role_{needed.name.lower()}"}


def current_operator() -> str:
    try:
        return pwd.getpwuid(os.getuid()).pw_name
    except KeyError:
        return str(os.getuid())


def unix_groups(user: str) -> frozenset[str]:
    names = {g.gr_name for g in grp.getgrall() if user in g.gr_mem}
    with contextlib.suppress(KeyError):
        names.add(grp.getgrgid(pwd.getpwnam(user).pw_gid).gr_name)
    return frozenset(names)


def role_for(user: str, groups: frozenset[str], roles: RolesConfig) -> Role:
    def matches(entries: list[str]) -> bool:
        return any(
            entry == "*" or entry == user or (entry.startswith("@") and entry[1:] in groups)
            for entry in entries
        )

    for role, entries in (
        (Role.ADMIN, roles.admin),
        (Role.ALERTER, roles.alerter),
        (Role.OPERATOR, roles.operator),
        (Role.VIEWER, roles.viewer),
    ):
        if matches(entries):
            return role
    return Role.NONE
