"""Helpers shared by the tests."""

from __future__ import annotations

import os

import pytest


def require_all() -> bool:
    return os.environ.get("TOCSIN_REQUIRE_ALL") == "1"


def missing_component(reason: str) -> None:
    """Skip on a user's machine; fail under CI, where every component must be there."""
    if require_all():
        pytest.fail(f"TOCSIN_REQUIRE_ALL=1 but {reason}")
    pytest.skip(reason)
