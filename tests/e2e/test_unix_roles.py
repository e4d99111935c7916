"""Roles against real Unix users on one server: the security suite.

A town's server as the README sets it up: a service user owns the database, the key
and the credentials; the town's config (root's) names the service and the roles.
Each operator tries every kind of action by the CLI, with a config of their own, by
the console in a real terminal, and straight on the files (sqlite3, Python): only
what their role allows succeeds, and every refusal is in the audit trail.

Needs root (to create the users); CI runs as root.
"""

from __future__ import annotations

import json
import os
import pwd
import shutil
import sqlite3
import subprocess
import sys
import tempfile
import time
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import pytest

from tests.support import missing_component

pytestmark = [pytest.mark.e2e, pytest.mark.sqlite_file]

SERVICE = "tocsinsvc"
USERS = {
    "tvviewer": "viewer",
    "tvop": "operator",
    "tvalert": "alerter",
    "tvadmin": "admin",
    "tvnobody": "",
}


@dataclass(frozen=True)
class Town:
    root: Path
    config: Path
    database: Path
    key: Path
    python: Path
    socket: Path

    def env(self, user: str, **extra: str) -> dict[str, str]:
        home = pwd.getpwnam(user).pw_dir
        return {
            "PATH": "/usr/bin:/bin",
            "HOME": home,
            "LANG": "C.UTF-8",
            "TOCSIN_SYSTEM_CONFIG": str(self.config),
            **extra,
        }

    def run(
        self, user: str, *argv: str, stdin: str = "", **extra: str
    ) -> subprocess.CompletedProcess[str]:
        return subprocess.run(
            [str(self.python), "-m", "screens", *argv],
            user=user,
            group=pwd.getpwnam(user).pw_gid,
            extra_groups=[],
            env=self.env(user, **extra),
            cwd=pwd.getpwnam(user).pw_dir,
            input=stdin,
            capture_output=True,
            text=True,
            timeout=120,
        )

    def query(self, sql: str) -> list[tuple[object, ...]]:
        with sqlite3.connect(self.database) as db:
            return db.execute(sql).fetchall()


def _ensure_user(name: str) -> None:
    try:
        pwd.getpwnam(name)
    except KeyError:
        subprocess.run(["useradd", "--create-home", "--shell", "/bin/bash", name], check=True)


def _traversable(path: Path) -> bool:
    return all(p.stat().st_mode & 0o001 for p in (path, *path.parents))


def _reachable(path: Path, folder: Path, mounts: list[Path]) -> Path:
    """`path` as other users can reach it: itself, or bind-mounted into `folder`
    when a folder above it is closed to them (a checkout under /root)."""
    if _traversable(path):
        return path
    seen = folder / f"mnt{len(mounts)}"
    seen.mkdir(mode=0o755)
    mounted = subprocess.run(["mount", "--bind", str(path), str(seen)], capture_output=True)
    if mounted.returncode != 0:
        missing_component(f"{path} is closed to other users and cannot be bind-mounted")
    mounts.append(seen)
    return seen


def _world_python(folder: Path, mounts: list[Path]) -> Path:
    """An interpreter every user may run, seeing this checkout and its packages: a
    venv of the system's Python with ours added (our own may sit under /root)."""
    version = f"python{sys.version_info.major}.{sys.version_info.minor}"
    base = shutil.which(version, path="/usr/bin:/usr/local/bin:/bin")
    if base is None:
        missing_component(f"/usr/bin/{version} is missing (apt-get install {version})")
    venv = folder / "venv"
    subprocess.run([base, "-m", "venv", "--without-pip", str(venv)], check=True)
    checkout = _reachable(Path(__file__).resolve().parents[2], folder, mounts)
    ours = [
        _reachable(Path(p), folder, mounts)
        for p in sys.path
        if p.endswith("site-packages") and Path(p).is_dir()
    ]
    # The checkout first: the editable install's finder names paths others may not reach.
    (venv / "lib" / version / "site-packages" / "tocsin.pth").write_text(
        f"import sys; sys.path.insert(0, {str(checkout)!r})\n"
        + "".join(f"import site; site.addsitedir({str(p)!r})\n" for p in ours)
    )
    return venv / "bin" / "python"


@pytest.fixture(scope="module")
def town() -> Iterator[Town]:
    if os.geteuid() != 0 or shutil.which("useradd") is None:
        missing_component("the Unix roles suite needs root and useradd (CI runs as root)")
    for name in (SERVICE, *USERS):
        _ensure_user(name)
    root = Path(tempfile.mkdtemp(prefix="tocsin-unix-"))
    root.chmod(0o755)
    mounts: list[Path] = []
    data, run = root / "data", root / "run"
    data.mkdir(mode=0o700)
    run.mkdir(mode=0o755)
    shutil.chown(data, SERVICE, SERVICE)
    shutil.chown(run, SERVICE, SERVICE)
    roles = "\n".join(
        f"{role} = {json.dumps([u for u, r in USERS.items() if r == role])}"
        for role in ("viewer", "operator", "alerter", "admin")
    )
    config = root / "config.toml"
    config.write_text(
        f'[database]\nurl = "sqlite:///{data / "town.db"}"\n'
        f'[privacy]\nhash_key_file = "{data / "suppression.key"}"\n'
        f'[service]\nuser = "{SERVICE}"\nsocket = "{run / "console.sock"}"\n'
        f"[roles]\n{roles}\n",
        encoding="utf-8",
    )
    config.chmod(0o644)
    town = Town(
        root=root,
        config=config,
        database=data / "town.db",
        key=data / "suppression.key",
        python=_world_python(root, mounts),
        socket=run / "console.sock",
    )
    init = town.run(SERVICE, "db", "init")
    assert init.returncode == 0, init.stderr
    service = subprocess.Popen(
        [str(town.python), "-m", "screens", "service"],
        user=SERVICE,
        group=pwd.getpwnam(SERVICE).pw_gid,
        extra_groups=[],
        env=town.env(SERVICE),
        cwd="/",
        stdout=subprocess.DEVNULL,
        stderr=(root / "service.log").open("wb"),
    )
    deadline = time.monotonic() + 30
    while not town.socket.exists():
        assert service.poll() is None, (root / "service.log").read_text()
        assert time.monotonic() < deadline, "the service never listened"
        time.sleep(0.1)
    yield town
    service.terminate()
    service.wait(timeout=10)
    unmounted = [subprocess.run(["umount", str(m)], check=False).returncode == 0 for m in mounts]
    if all(unmounted):  # never delete through a mount still holding the checkout
        shutil.rmtree(root, ignore_errors=True)


# (arguments, the lowest role that may) for every kind of action.
ACTIONS = [
    (["status", "--json"], "viewer"),
    (["contact", "add", "06 30 00 00 {n}", "--name", "[b]Zoé[/b] \x1b[2J"], "operator"),
    (["send", "--topic", "alertes", "--all", "--emergency", "--text", "Crue", "--yes"], "alerter"),
    (["contact", "erase", "1", "--yes"], "admin"),
]
ORDER = ["", "viewer", "operator", "alerter", "admin"]


@pytest.mark.parametrize("user", list(USERS))
def test_each_user_does_exactly_what_their_role_allows(town: Town, user: str) -> None:
    role = USERS[user]
    # Someone to erase, whatever ran before.
    assert town.run("tvadmin", "contact", "add", "06 30 00 00 99").returncode in (0, 1)
    for number, (argv, needed) in enumerate(ACTIONS):
        argv = [a.replace("{n}", f"{10 + number + 10 * ORDER.index(role or '')}") for a in argv]
        result = town.run(user, *argv)
        allowed = ORDER.index(role) >= ORDER.index(needed)
        assert (result.returncode == 0) == allowed, (user, argv, result.stdout, result.stderr)
        if not allowed:
            assert result.stderr.startswith("tocsin: "), result.stderr
            assert "Traceback" not in result.stderr


@pytest.mark.parametrize("user", ["tvviewer", "tvop"])
def test_an_own_config_changes_nothing(town: Town, user: str) -> None:
    home = Path(pwd.getpwnam(user).pw_dir)
    own = home / "moi.toml"
    own.write_text(
        f'[database]\nurl = "sqlite:///{town.database}"\n[roles]\nadmin = ["*"]\n'
        '[console]\nlanguage = "en"\n',
        encoding="utf-8",
    )
    shutil.chown(own, user)
    before = town.query("SELECT count(*) FROM contact WHERE erased_at IS NULL")
    by_option = town.run(user, "--config", str(own), "contact", "erase", "1", "--yes")
    by_env = town.run(user, "contact", "erase", "1", "--yes", TOCSIN_CONFIG=str(own))
    # Pointing at a town config of one's own: not root's, so not the town's; the
    # command then runs here, and the files are not theirs to open.
    by_system = town.run(user, "contact", "erase", "1", "--yes", TOCSIN_SYSTEM_CONFIG=str(own))
    for result in (by_option, by_env, by_system):
        assert result.returncode != 0, result.stdout
        assert "Traceback" not in result.stderr, result.stderr
    # Their own [console] is theirs: the refusal came in English.
    assert "does not have the admin role" in by_option.stderr, by_option.stderr
    assert town.query("SELECT count(*) FROM contact WHERE erased_at IS NULL") == before


@pytest.mark.parametrize("user", [u for u in USERS])
def test_the_files_are_the_services_alone(town: Town, user: str) -> None:
    """sqlite3 and Python on the database, the key: nobody but the service."""
    env = town.env(user)
    ids = {"user": user, "group": pwd.getpwnam(user).pw_gid, "extra_groups": [], "env": env}
    if shutil.which("sqlite3") is None:
        missing_component("the sqlite3 shell is missing (apt-get install sqlite3)")
    for sql in ("SELECT count(*) FROM contact", "UPDATE message SET text = 'faux'"):
        tool = subprocess.run(
            ["sqlite3", str(town.database), sql], capture_output=True, text=True, **ids
        )
        assert tool.returncode != 0, tool.stdout
    script = (
        "import sqlite3, sys\n"
        f"db = sqlite3.connect({str(town.database)!r})\n"
        "db.execute(\"UPDATE consent_state SET state = 'granted'\")\n"
    )
    direct = subprocess.run([str(town.python), "-c", script], capture_output=True, text=True, **ids)
    assert direct.returncode != 0
    assert "unable to open database" in direct.stderr
    key = subprocess.run(["cat", str(town.key)], capture_output=True, text=True, **ids)
    assert key.returncode != 0


def test_every_refusal_is_audited_with_the_unix_user(town: Town) -> None:
    town.run("tvviewer", "contact", "add", "06 30 00 00 77")
    town.run("tvnobody", "status")
    upgrade = town.run("tvop", "db", "upgrade")
    assert upgrade.returncode == 2 and "administrateur" in upgrade.stderr, upgrade.stderr
    rows = town.query(
        "SELECT operator, target, details FROM audit_entry WHERE action = 'refused' ORDER BY seq"
    )
    seen = {(operator, target) for operator, target, _ in rows}
    assert ("tvviewer", "add_contact") in seen
    assert ("tvnobody", "service") in seen
    commands = [json.loads(str(details)).get("command", "") for _, _, details in rows]
    assert "tocsin contact add '06 30 00 00 77'" in commands
    assert ("tvop", "service") in seen


def test_files_an_operator_names_are_theirs(town: Town) -> None:
    home = Path(pwd.getpwnam("tvadmin").pw_dir)
    csv = home / "habitants.csv"
    csv.write_text("numero;nom\n06 31 00 00 01;Anne\n06 31 00 00 02;Luc\n", encoding="utf-8")
    csv.chmod(0o600)
    shutil.chown(csv, "tvadmin")
    imported = town.run("tvadmin", "import", "contacts", str(csv))
    assert imported.returncode == 0, imported.stderr
    backup = home / "sauvegarde.db"
    saved = town.run("tvadmin", "db", "backup", str(backup), "--json")
    assert saved.returncode == 0, saved.stderr
    assert backup.stat().st_uid == pwd.getpwnam("tvadmin").pw_uid
    assert backup.stat().st_size > 0


def test_the_console_runs_through_the_service_in_a_terminal(town: Town) -> None:
    tmux = shutil.which("tmux")
    if tmux is None:
        missing_component("tmux is missing (apt-get install tmux)")
    socket = Path(pwd.getpwnam("tvviewer").pw_dir) / "tmux.sock"
    env = " ".join(f"{k}={v}" for k, v in town.env("tvviewer", TERM="xterm-256color").items())
    command = f"env -i {env} {town.python} -m screens; echo fin=$?; sleep 30"
    subprocess.run(
        [
            "runuser",
            "-u",
            "tvviewer",
            "--",
            tmux,
            "-S",
            str(socket),
            "new-session",
            "-d",
            "-x",
            "120",
            "-y",
            "40",
            command,
        ],
        check=True,
    )
    try:
        screen = _wait_for(socket, "tvviewer (viewer)")
        assert "Envois" in screen
        _keys(socket, "2")
        _wait_for(socket, "Quartier")
        _keys(socket, "q")
        # Alerts of the other tests wait for a worker: quitting asks first.
        if "Quitter Tocsin" in _wait_for(socket, "Quitter Tocsin", "fin=0"):
            _keys(socket, "Tab")
            _keys(socket, "Enter")
        _wait_for(socket, "fin=0")
    finally:
        subprocess.run(
            ["runuser", "-u", "tvviewer", "--", tmux, "-S", str(socket), "kill-server"], check=False
        )


def _keys(socket: Path, keys: str) -> None:
    subprocess.run(
        ["runuser", "-u", "tvviewer", "--", "tmux", "-S", str(socket), "send-keys", keys],
        check=True,
    )


def _wait_for(socket: Path, text: str, other: str = "") -> str:
    """The screen once it shows `text` (or `other`)."""
    deadline = time.monotonic() + 30
    screen = ""
    while time.monotonic() < deadline:
        screen = subprocess.run(
            ["runuser", "-u", "tvviewer", "--", "tmux", "-S", str(socket), "capture-pane", "-p"],
            capture_output=True,
            text=True,
        ).stdout
        if text in screen or (other and other in screen):
            return screen
        time.sleep(0.3)
    raise AssertionError(f"{text!r} never showed:\n{screen}")


def test_the_demo_is_anyones_own(town: Town) -> None:
    """`tocsin demo` touches none of the town's files: it runs as the user, whoever."""
    home = Path(pwd.getpwnam("tvnobody").pw_dir)
    demo = town.run(
        "tvnobody", "demo", "--no-tui", "--dir", str(home / "demo"), "--residents", "50"
    )
    assert demo.returncode == 0, demo.stderr
    assert (home / "demo").stat().st_uid == pwd.getpwnam("tvnobody").pw_uid
