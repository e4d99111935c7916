"""config.toml: defaults, lookup order, and one clear line per mistake."""

from __future__ import annotations

import os
from pathlib import Path

import platformdirs
import pytest
from pydantic import BaseModel

import console.config as config_module
from console.composing.composer import analyse, fill_template, unfilled_placeholders
from console.config import (
    DEFAULT_STOP_MENTION,
    Config,
    ConfigError,
    TopicConfig,
    database_url,
    find_config_file,
    load_config,
    parse_config,
    read_configuration,
)
from tests.support import missing_component

REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def places(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> dict[str, Path]:
    """Point /etc/tocsin and the user config dir at temp dirs; nothing exists yet."""
    system = tmp_path / "etc" / "tocsin" / "config.toml"
    user_dir = tmp_path / "home" / ".config" / "tocsin"
    monkeypatch.setattr(config_module, "SYSTEM_CONFIG", system)
    # The files these tests write are their user's: trusted as root's would be.
    monkeypatch.setattr(config_module, "TRUSTED_OWNER", os.geteuid())
    monkeypatch.setattr(platformdirs, "user_config_dir", lambda *args, **kwargs: str(user_dir))
    return {
        "system": system,
        "user": user_dir / "config.toml",
        "explicit": tmp_path / "explicit.toml",
        "env": tmp_path / "env.toml",
    }


def _write(path: Path, town: str) -> Path:
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(f'[town]\nname = "{town}"\n', encoding="utf-8")
    return path


def test_defaults_without_any_file(places: dict[str, Path]) -> None:
    config = load_config(None, {})
    assert config == Config()
    assert config.town.name == "Commune de démonstration"
    assert config.town.region == "FR"
    assert config.town.timezone == "Europe/Paris"
    assert config.console.language == "fr"
    assert config.console.page_size == 100
    assert config.provider.name == "simulated"
    assert config.roles.viewer == ["*"]
    assert config.roles.admin == ["root", "@tocsin-admin"]
    assert list(config.topics) == ["alertes", "evenements", "travaux", "elections", "infos"]
    assert config.topics["alertes"].legal_basis == "public_safety"
    assert {t.legal_basis for k, t in config.topics.items() if k != "alertes"} == {"consent"}


def test_empty_file_gives_defaults() -> None:
    assert parse_config("", "x.toml") == Config()


def test_lookup_order(places: dict[str, Path]) -> None:
    for name in ("explicit", "env", "system", "user"):
        _write(places[name], name)
    env = {"TOCSIN_CONFIG": str(places["env"])}

    assert load_config(str(places["explicit"]), env).town.name == "explicit"
    assert load_config(None, env).town.name == "env"
    assert load_config(None, {}).town.name == "system"
    places["system"].unlink()
    assert load_config(None, {}).town.name == "user"
    places["user"].unlink()
    assert load_config(None, {}) == Config()


def test_empty_tocsin_config_is_ignored(places: dict[str, Path]) -> None:
    _write(places["system"], "system")
    assert find_config_file(None, {"TOCSIN_CONFIG": ""}) == places["system"]


def test_explicit_file_wins_even_over_a_broken_env(places: dict[str, Path]) -> None:
    _write(places["explicit"], "explicit")
    env = {"TOCSIN_CONFIG": str(places["env"])}  # does not exist
    assert load_config(str(places["explicit"]), env).town.name == "explicit"


def test_missing_explicit_or_env_file_is_an_error(places: dict[str, Path]) -> None:
    _write(places["system"], "system")  # never used as a fallback for a named file
    missing = places["explicit"]
    with pytest.raises(ConfigError) as raised:
        load_config(str(missing), {})
    assert str(raised.value) == f"{missing}: config file not found"
    with pytest.raises(ConfigError) as raised:
        load_config(None, {"TOCSIN_CONFIG": str(missing)})
    assert str(raised.value) == f"{missing}: config file not found"


def test_load_config_reads_os_environ(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    _write(places["env"], "from environ")
    monkeypatch.setenv("TOCSIN_CONFIG", str(places["env"]))
    assert load_config().town.name == "from environ"


def test_error_names_the_file_it_came_from(places: dict[str, Path]) -> None:
    places["user"].parent.mkdir(parents=True)
    places["user"].write_text("[town]\nfoo = 1\n", encoding="utf-8")
    with pytest.raises(ConfigError) as raised:
        load_config(None, {})
    assert str(raised.value) == f"{places['user']}: key 'town.foo': unknown key"


def test_undecodable_file_is_one_line(places: dict[str, Path]) -> None:
    places["explicit"].write_bytes(b'[town]\nname = "Mairie \xe9"\n')
    with pytest.raises(ConfigError) as raised:
        load_config(str(places["explicit"]), {})
    message = str(raised.value)
    assert message.startswith(f"{places['explicit']}: cannot read: ")
    assert "\n" not in message


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("[town]\nfoo = 1\n", "x.toml: key 'town.foo': unknown key"),
        ("foo = 1\n", "x.toml: key 'foo': unknown key"),
        ("[nope]\na = 1\n", "x.toml: key 'nope': unknown key"),
        ("[provider]\nnmae = 'kannel'\n", "x.toml: key 'provider.nmae': unknown key"),
        ("[town]\nname = 3\n", "x.toml: key 'town.name': expected a string (got 3)"),
        (
            '[console]\npage_size = "200"\n',
            "x.toml: key 'console.page_size': expected an integer (got '200')",
        ),
        (
            "[console]\npage_size = true\n",
            "x.toml: key 'console.page_size': expected an integer (got True)",
        ),
        (
            "[console]\npage_size = 5\n",
            "x.toml: key 'console.page_size': expected greater than or equal to 20 (got 5)",
        ),
        (
            "[provider]\nconcurrency = 1.5\n",
            "x.toml: key 'provider.concurrency': expected an integer (got 1.5)",
        ),
        (
            '[provider]\nrate = "fast"\n',
            "x.toml: key 'provider.rate': expected a number (got 'fast')",
        ),
        ("[provider]\nrate = 0\n", "x.toml: key 'provider.rate': expected greater than 0 (got 0)"),
        ('[roles]\nadmin = "root"\n', "x.toml: key 'roles.admin': expected a list (got 'root')"),
        ("[roles]\nadmin = [1]\n", "x.toml: key 'roles.admin.0': expected a string (got 1)"),
        (
            '[console]\nlanguage = "de"\n',
            "x.toml: key 'console.language': expected 'fr' or 'en' (got 'de')",
        ),
        ('[topics.ag]\nlegal_basis = "consent"\n', "x.toml: key 'topics.ag.label': missing value"),
        (
            '[topics.x]\nlabel = "X"\nlegal_basis = "none"\n',
            "x.toml: key 'topics.x.legal_basis': expected 'public_safety' or 'consent' "
            "(got 'none')",
        ),
        (
            '[topics.Foo]\nlabel = "x"\n',
            "x.toml: key 'topics': expected lower-case topic names (got 'Foo')",
        ),
        ("topics = {}\n", "x.toml: key 'topics': expected at least one topic"),
        ('town = "Brest"\n', "x.toml: key 'town': expected a table (got 'Brest')"),
        ('[console]\nkeymap = "vi"\n', "x.toml: key 'console.keymap': expected a table (got 'vi')"),
        (
            '[alert]\ntopic = "urgence"\n',
            "x.toml: key 'alert.topic': expected the topic emergency alerts use, one of "
            "'alertes', 'evenements', 'travaux', 'elections', 'infos' (got 'urgence')",
        ),
        (
            '[topics.marche]\nlabel = "Marché"\n',
            "x.toml: key 'alert.topic': expected the topic emergency alerts use, one of "
            "'marche' (got 'alertes')",
        ),
        ("[alert]\ntopic = 1\n", "x.toml: key 'alert.topic': expected a string (got 1)"),
        ("[alert]\nsujet = 'alertes'\n", "x.toml: key 'alert.sujet': unknown key"),
        (
            '[topics.alertes]\nlabel = "A"\n[topics.alertes.templates]\n'
            '"Accident de la route" = "Accident {lieux} à {heure}"\n',
            "x.toml: key 'topics.alertes.templates.\"Accident de la route\"': unknown "
            "placeholder {lieux} (expected {commune}, {date}, {heure}, {lieu}, {zone})",
        ),
        (
            '[topics.alertes]\nlabel = "A"\ntemplates = { Crue = "Crue à {Commune}" }\n',
            "x.toml: key 'topics.alertes.templates.Crue': unknown placeholder {Commune} "
            "(expected {commune}, {date}, {heure}, {lieu}, {zone})",
        ),
        (
            '[topics.alertes]\nlabel = "A"\ntemplates = { Crue = " " }\n',
            "x.toml: key 'topics.alertes.templates.Crue': expected the text of the template "
            "(got '')",
        ),
        (
            '[topics.alertes]\nlabel = "A"\ntemplates = { Crue = 3 }\n',
            "x.toml: key 'topics.alertes.templates.Crue': expected a string (got 3)",
        ),
        (
            '[topics.alertes]\nlabel = "A"\nstop_mention = false\n',
            "x.toml: key 'topics.alertes.stop_mention': expected a string (got False)",
        ),
    ],
)
def test_one_line_per_mistake(text: str, message: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "x.toml")
    assert str(raised.value) == message


def test_several_mistakes_still_one_line() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config("[town]\nfoo = 1\nbar = 2\n[console]\npage_size = 1\n", "x.toml")
    assert "\n" not in str(raised.value)
    assert str(raised.value).startswith("x.toml: key '")


@pytest.mark.parametrize(
    "text",
    ["[town\nname = 'x'\n", "[town]\nname = \n", "[town]\nname='a'\n[town]\nname='b'\n", "= 1"],
)
def test_bad_toml_is_one_line_naming_the_file(text: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(text, "x.toml")
    message = str(raised.value)
    assert message.startswith("x.toml: not valid TOML: ")
    assert "(at line " in message
    assert "\n" not in message


def test_bad_region() -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config('[town]\nregion = "DE"\n', "x.toml")
    assert str(raised.value) == (
        "x.toml: key 'town.region': expected 'FR', 'RE', 'YT', 'GP', 'MQ', 'GF', 'PM', 'BL', "
        "'MF', 'NC', 'PF' or 'WF' (got 'DE')"
    )


@pytest.mark.parametrize("zone", ["Europe/Pariss", "Paris", "", "../etc/passwd"])
def test_bad_timezone(zone: str) -> None:
    with pytest.raises(ConfigError) as raised:
        parse_config(f'[town]\ntimezone = "{zone}"\n', "x.toml")
    assert str(raised.value) == (
        "x.toml: key 'town.timezone': expected an IANA time zone such as Europe/Paris "
        f"(got {zone!r})"
    )


def test_overseas_town() -> None:
    config = parse_config(
        '[town]\nname = "Saint-Paul"\nregion = "RE"\ntimezone = "Indian/Reunion"\n', "x.toml"
    )
    assert (config.town.name, config.town.region, config.town.timezone) == (
        "Saint-Paul",
        "RE",
        "Indian/Reunion",
    )
    assert config.console == Config().console


def test_topics_replace_the_default_list() -> None:
    # Without the default topics, alert.topic must name the one emergencies use.
    config = parse_config(
        '[topics.marche]\nlabel = "Marché"\n[alert]\ntopic = "marche"\n', "x.toml"
    )
    assert config.topics == {
        "marche": TopicConfig(label="Marché", keywords=["OUI MARCHE", "INSCRIPTION MARCHE"])
    }
    assert config.topics["marche"].legal_basis == "consent"
    assert config.topics["marche"].consent_text_version == "v1"


def test_keymap_and_database_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    config = parse_config(
        '[database]\nurl = "postgresql://tocsin@db/tocsin"\n'
        '[console.keymap]\n"app.quit" = "ctrl+q"\n',
        "x.toml",
    )
    assert config.console.keymap == {"app.quit": "ctrl+q"}
    assert database_url(config) == "postgresql://tocsin@db/tocsin"
    monkeypatch.setattr(platformdirs, "user_data_dir", lambda *args, **kwargs: str(tmp_path))
    assert database_url(Config()) == f"sqlite:///{tmp_path / 'tocsin.db'}"


def test_config_is_frozen() -> None:
    config = Config()
    with pytest.raises(ValueError):
        config.town.name = "Autre"  # type: ignore[misc]


def test_example_file_equals_the_defaults() -> None:
    example = REPO / "config.toml.example"
    if not example.exists():
        pytest.skip("config.toml.example not written yet")
    assert parse_config(example.read_text(encoding="utf-8"), str(example)) == Config()


def test_example_file_mentions_every_key() -> None:
    text = (REPO / "config.toml.example").read_text(encoding="utf-8")

    def walk(model: BaseModel, section: str) -> None:
        assert f"[{section}]" in text, f"[{section}] missing from the example"
        for key in type(model).model_fields:
            value = getattr(model, key)
            if isinstance(value, BaseModel):
                walk(value, f"{section}.{key}")
            elif key == "keymap":
                assert f"[{section}.keymap]" in text
            else:
                assert f"\n{key} = " in text, f"{section}.{key} missing from the example"

    config = Config()
    for section in type(config).model_fields:
        if section != "topics":
            walk(getattr(config, section), section)
    for topic, settings in config.topics.items():
        assert f"[topics.{topic}]" in text
        block = text[text.index(f"[topics.{topic}]") :]
        for key in type(settings).model_fields:
            assert f"\n{key} = " in block or f"[topics.{topic}.{key}]" in block, (
                f"topics.{topic}.{key} missing from the example"
            )


def test_default_templates_and_stop_mentions() -> None:
    topics = Config().topics
    assert Config().alert.topic == "alertes"
    assert topics["alertes"].stop_mention == ""
    assert list(topics["alertes"].templates) == [
        "Inondation",
        "Accident de la route",
        "Intempéries",
        "Grève scolaire",
        "Coupure d'eau",
        "Confinement",
    ]
    for name in ("evenements", "travaux", "elections", "infos"):
        assert topics[name].templates == {}
        assert topics[name].stop_mention == DEFAULT_STOP_MENTION
    assert analyse(DEFAULT_STOP_MENTION).encoding == "GSM-7"


@pytest.mark.parametrize("label", list(Config().topics["alertes"].templates))
@pytest.mark.parametrize(
    "values",
    [
        {
            "commune": "Val-Tocsin",
            "date": "14/03/2026",
            "heure": "21h05",
            "lieu": "rue de la Gare",
            "zone": "Centre",
        },
        # Long but ordinary: a hyphenated commune, two quartiers, a full street name.
        {
            "commune": "Saint-Martin-de-la-Vallée-Haute",
            "date": "28/11/2026",
            "heure": "06h45",
            "lieu": "avenue du Maréchal-Leclerc",
            "zone": "Les Prés, La Gare, Centre-bourg",
        },
    ],
)
def test_default_templates_fill_to_two_gsm7_sms(label: str, values: dict[str, str]) -> None:
    template = Config().topics["alertes"].templates[label]
    filled = fill_template(template, values)
    assert unfilled_placeholders(filled) == []
    analysis = analyse(filled)
    assert analysis.encoding == "GSM-7", analysis.ucs2_characters
    assert analysis.segments <= 2


def test_stop_mention_defaults_by_legal_basis() -> None:
    # A town redefining its topics keeps the opt-out line on consent topics.
    config = parse_config(
        '[topics.urgence]\nlabel = "Urgence"\nlegal_basis = "public_safety"\n'
        '[topics.marche]\nlabel = "Marché"\n'
        '[topics.fete]\nlabel = "Fête"\nstop_mention = ""\n'
        '[topics.foire]\nlabel = "Foire"\nstop_mention = "STOP au 36180"\n'
        '[alert]\ntopic = "urgence"\n',
        "x.toml",
    )
    assert {name: t.stop_mention for name, t in config.topics.items()} == {
        "urgence": "",
        "marche": DEFAULT_STOP_MENTION,
        "fete": "",
        "foire": "STOP au 36180",
    }
    assert config.alert.topic == "urgence"


def test_templates_with_braces_that_are_not_placeholders() -> None:
    config = parse_config(
        '[topics.alertes]\nlabel = "A"\nlegal_basis = "public_safety"\n'
        '[topics.alertes.templates]\n"Exercice" = "Exercice {lieu} { } {1} {{zone}}"\n',
        "x.toml",
    )
    assert config.topics["alertes"].templates == {"Exercice": "Exercice {lieu} { } {1} {{zone}}"}


TOWN = """
[town]
name = "Mairie de Saint-Clair"
[roles]
viewer = ["*"]
operator = ["@tocsin"]
alerter = ["@tocsin-alert"]
admin = ["root"]
[database]
url = "sqlite:////var/lib/tocsin/tocsin.db"
"""
OWN = """
[roles]
admin = ["*"]
[database]
url = "sqlite:////tmp/mine.db"
[console]
language = "en"
"""


def _system(places: dict[str, Path]) -> None:
    places["system"].parent.mkdir(parents=True, exist_ok=True)
    places["system"].write_text(TOWN, encoding="utf-8")
    places["system"].chmod(0o644)


def test_a_users_own_config_sets_only_their_console(places: dict[str, Path]) -> None:
    _system(places)
    own = places["explicit"]
    own.write_text(OWN, encoding="utf-8")
    own.chmod(0o666)  # anybody may write it: it cannot speak for the town
    for loaded in (
        read_configuration(str(own), {}),
        read_configuration(None, {"TOCSIN_CONFIG": str(own)}),
    ):
        assert loaded.config.roles.admin == ["root"]
        assert loaded.config.database.url == "sqlite:////var/lib/tocsin/tocsin.db"
        assert loaded.config.town.name == "Mairie de Saint-Clair"
        assert loaded.config.console.language == "en"
        assert loaded.ignored == ("database", "roles")


def test_the_user_config_dir_keeps_its_preferences_beside_the_system(
    places: dict[str, Path],
) -> None:
    _system(places)
    places["user"].parent.mkdir(parents=True)
    places["user"].write_text(OWN, encoding="utf-8")
    loaded = read_configuration(None, {})
    assert loaded.config.console.language == "en"
    assert loaded.config.roles.admin == ["root"]


def test_a_config_owned_by_someone_else_is_not_the_towns(
    places: dict[str, Path], monkeypatch: pytest.MonkeyPatch
) -> None:
    if os.geteuid() != 0:
        missing_component("giving a file to another user needs root (CI runs as root)")
    monkeypatch.setattr(config_module, "TRUSTED_OWNER", 0)
    _system(places)
    own = places["explicit"]
    own.write_text(OWN, encoding="utf-8")
    own.chmod(0o644)
    os.chown(own, 65534, 65534)  # nobody's, as an operator's own file is theirs
    assert load_config(str(own), {}).roles.admin == ["root"]
    # Root's own alternative config (a staging town) is honoured whole.
    os.chown(own, 0, 0)
    assert load_config(str(own), {}).roles.admin == ["*"]


def test_a_system_config_others_may_write_is_refused(places: dict[str, Path]) -> None:
    _system(places)
    places["system"].chmod(0o666)
    with pytest.raises(ConfigError, match="must be owned by root and writable by nobody else"):
        load_config(None, {})
