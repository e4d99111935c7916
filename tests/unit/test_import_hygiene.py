"""The import contracts live in pyproject.toml and `lint-imports` checks them in
scripts/test. This checks what they cannot see: what the `tocsin` command loads at
run time before it knows it will open the console."""

from __future__ import annotations

import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]


def test_the_command_loads_no_ui_until_the_console_opens() -> None:
    script = textwrap.dedent(
        """
        import sys
        import screens.entry, console.sending.worker_main, console.cli, console.demo
        loaded = sorted(m for m in sys.modules if m.split(".")[0] == "textual"
                        or m in {"screens.app"})
        assert not loaded, loaded[:5]
        print("ok")
        """
    )
    result = subprocess.run(
        [sys.executable, "-c", script],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        check=False,
    )
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == "ok"
