"""Import direction: screens -> console -> storage, and no Textual outside the UI.

The worker and the CLI verbs must never load the UI. The package folders are
walked, so a new module is covered the day it is added.
"""

from __future__ import annotations

import ast
import subprocess
import sys
import textwrap
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]
# Modules allowed to import Textual (besides everything under screens/): the shell and
# its entry points.
UI_SHELL = {"console.app", "console.cli", "console.__main__"}
# Alembic runs this file itself, inside its own context; it is not importable alone.
NOT_IMPORTABLE = {"storage.migrations.env"}


def _modules(package: str) -> dict[str, Path]:
    """Every module of a package folder, by dotted name (packages as their __init__)."""
    found: dict[str, Path] = {}
    for path in sorted((ROOT / package).rglob("*.py")):
        relative = path.relative_to(ROOT).with_suffix("")
        parts = relative.parts[:-1] if relative.name == "__init__" else relative.parts
        found[".".join(parts)] = path
    return found


def _imports(path: Path) -> list[tuple[int, str]]:
    """(line, module) for every import in the file, at any depth (lazy ones included)."""
    tree = ast.parse(path.read_text(encoding="utf-8"), filename=str(path))
    names: list[tuple[int, str]] = []
    for node in ast.walk(tree):
        if isinstance(node, ast.Import):
            names.extend((node.lineno, alias.name) for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
            names.append((node.lineno, node.module))
    return names


def _top(module: str) -> str:
    return module.split(".")[0]


def test_the_walk_finds_the_packages() -> None:
    storage = _modules("storage")
    console = _modules("console")
    assert {"storage.models", "storage.engine", "storage.chain", "storage.queries"} <= set(storage)
    assert {"console.numbers", "console.contacts", "console.consent", "console.config"} <= set(
        console
    )
    assert "storage.migrations.versions.0001_initial_schema" in storage


def test_storage_imports_neither_console_nor_screens() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for path in _modules("storage").values()
        for line, name in _imports(path)
        if _top(name) in {"console", "screens", "textual"}
    ]
    assert offenders == []


def test_only_the_ui_imports_textual() -> None:
    offenders = [
        f"{path.relative_to(ROOT)}:{line} imports {name}"
        for package in ("console", "storage")
        for module, path in _modules(package).items()
        if module not in UI_SHELL
        for line, name in _imports(path)
        if _top(name) == "textual"
    ]
    assert offenders == []


def test_services_do_not_import_screens_at_module_level() -> None:
    """console/ is below screens/: only the shell (app, cli) may reach up to it."""
    offenders = []
    for module, path in _modules("console").items():
        if module in UI_SHELL:
            continue
        tree = ast.parse(path.read_text(encoding="utf-8"))
        for node in tree.body:
            names: list[str] = []
            if isinstance(node, ast.Import):
                names = [alias.name for alias in node.names]
            elif isinstance(node, ast.ImportFrom) and node.level == 0 and node.module:
                names = [node.module]
            for name in names:
                if _top(name) == "screens" or name in UI_SHELL:
                    offenders.append(f"{path.relative_to(ROOT)}:{node.lineno} imports {name}")
    assert offenders == []


def test_importing_services_and_storage_never_loads_textual() -> None:
    modules = sorted(
        name
        for package in ("storage", "console")
        for name in _modules(package)
        if name not in UI_SHELL and name not in NOT_IMPORTABLE
    )
    script = textwrap.dedent(
        f"""
        import importlib, sys
        for name in {modules!r}:
            importlib.import_module(name)
            loaded = sorted(m for m in sys.modules if m == "textual" or m.startswith("textual."))
            assert not loaded, f"importing {{name}} loaded {{loaded[:3]}}"
        ui = sorted(m for m in sys.modules if m.startswith("screens") or m in {sorted(UI_SHELL)!r})
        assert not ui, f"UI modules loaded: {{ui}}"
        print(len({modules!r}))
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
    assert result.stdout.strip() == str(len(modules))
    assert "console.numbers" in modules and "storage.models" in modules
