"""On whose behalf this process acts: the service's child says so in its
environment, which only counts when this process is the service's own user."""

from __future__ import annotations

import json
import os
import pwd
from collections.abc import Mapping

from console.config import Config

ACTING_FOR = "TOCSIN_ACTING_FOR"
CONSOLE_PREFS = "TOCSIN_CONSOLE_PREFS"


def service_uid(config: Config) -> int | None:
    """The uid of the configured service user, or None (no service, or no such user)."""
    if not config.service.user:
        return None
    try:
        return pwd.getpwnam(config.service.user).pw_uid
    except KeyError:
        return None


def acting_for(config: Config, environ: Mapping[str, str] | None = None) -> str | None:
    """The operator the service runs this command for, or None.

    Anyone may set the variable; it is believed only by the service's user, who is
    the one that set it (a user who could run as the service user could open the
    database anyway)."""
    name = (os.environ if environ is None else environ).get(ACTING_FOR)
    if not name:
        return None
    uid = service_uid(config)
    return name if uid is not None and os.getuid() == uid else None


def with_console_prefs(config: Config, environ: Mapping[str, str] | None = None) -> Config:
    """The town's config with the operator's own [console] preferences (language,
    keymap), which their client sent along: the one table a user may set."""
    environ = os.environ if environ is None else environ
    raw = environ.get(CONSOLE_PREFS)
    if not raw or acting_for(config, environ) is None:
        return config
    from console.config import ConsoleConfig

    try:
        prefs = ConsoleConfig.model_validate(json.loads(raw))
    except ValueError:
        return config  # theirs to fix; the town's defaults meanwhile
    return config.model_copy(update={"console": prefs})
