"""Provider secrets: environment first, then a file only the service user may read;
the provider registry that consumes them."""

from __future__ import annotations

import os
import pickle
from pathlib import Path

import pytest

import console.sending.providers.credentials as credentials_module
from console.config import ProviderConfig
from console.sending.providers.credentials import Credentials, CredentialsError, load_credentials
from console.sending.providers.octopush import OctopushProvider
from console.sending.providers.registry import callback_urls, make_provider, report_url
from console.sending.providers.simulated import SimulatedProvider
from console.sending.providers.smsfactor import SmsFactorProvider
from console.sending.providers.twilio import TwilioProvider

SECRETS = """\
[twilio]
auth_token = "file-twilio-token"

[octopush]
api_key = "file-octopush-key"

[endpoint]
token = "file-endpoint-token"
"""


def write(tmp_path: Path, text: str = SECRETS, mode: int = 0o600) -> Path:
    path = tmp_path / "credentials.toml"
    path.write_text(text, encoding="utf-8")
    path.chmod(mode)
    return path


def with_file(path: Path, **provider: object) -> ProviderConfig:
    return ProviderConfig.model_validate({"credentials_file": str(path), **provider})


def refusal(config: ProviderConfig, environ: dict[str, str] | None = None) -> str:
    with pytest.raises(CredentialsError) as caught:
        load_credentials(config, environ or {})
    message = str(caught.value)
    assert "\n" not in message
    return message


def test_the_environment_alone_is_enough() -> None:
    creds = load_credentials(
        ProviderConfig(), {"TOCSIN_TWILIO_AUTH_TOKEN": "env-token", "TOCSIN_ENDPOINT_TOKEN": "e"}
    )
    assert creds.get("twilio", "auth_token") == "env-token"
    assert creds.get("endpoint", "token") == "e"
    assert creds.source == ""


def test_a_missing_secret_names_both_places_to_put_it(tmp_path: Path) -> None:
    with pytest.raises(CredentialsError) as caught:
        load_credentials(ProviderConfig(), {}).get("smsfactor", "token")
    assert str(caught.value) == (
        "missing credential: smsfactor.token (set TOCSIN_SMSFACTOR_TOKEN or add it to "
        "the file named by provider.credentials_file)"
    )
    path = write(tmp_path)
    with pytest.raises(CredentialsError) as caught:
        load_credentials(with_file(path), {}).get("kannel", "password")
    assert str(caught.value) == (
        f"missing credential: kannel.password (set TOCSIN_KANNEL_PASSWORD or add it to {path})"
    )


def test_the_file_is_read_and_the_environment_wins(tmp_path: Path) -> None:
    path = write(tmp_path)
    creds = load_credentials(
        with_file(path), {"TOCSIN_OCTOPUSH_API_KEY": "env-key", "TOCSIN_TWILIO_AUTH_TOKEN": ""}
    )
    assert creds.get("octopush", "api_key") == "env-key"
    # An empty variable (a blank line of an EnvironmentFile) does not hide the file.
    assert creds.get("twilio", "auth_token") == "file-twilio-token"
    assert creds.get("endpoint", "token") == "file-endpoint-token"
    assert creds.has("twilio", "auth_token") and not creds.has("smsfactor", "token")
    assert creds.source == str(path)


def test_every_documented_variable_is_read() -> None:
    environ = {
        "TOCSIN_KANNEL_PASSWORD": "a",
        "TOCSIN_TWILIO_AUTH_TOKEN": "b",
        "TOCSIN_OCTOPUSH_API_KEY": "c",
        "TOCSIN_SMSFACTOR_TOKEN": "d",
        "TOCSIN_ENDPOINT_TOKEN": "e",
    }
    creds = load_credentials(ProviderConfig(), environ)
    assert [
        creds.get(*name)
        for name in [
            ("kannel", "password"),
            ("twilio", "auth_token"),
            ("octopush", "api_key"),
            ("smsfactor", "token"),
            ("endpoint", "token"),
        ]
    ] == list("abcde")


@pytest.mark.parametrize("mode", [0o644, 0o640, 0o604, 0o620, 0o660])
def test_a_file_open_to_other_users_is_refused(tmp_path: Path, mode: int) -> None:
    path = write(tmp_path, mode=mode)
    message = refusal(with_file(path))
    assert message.startswith(f"{path}: ")
    assert f"mode {mode:04o}" in message and "chmod 600" in message
    assert "file-twilio-token" not in message


def test_an_owner_only_file_with_any_owner_bits_is_accepted(tmp_path: Path) -> None:
    path = write(tmp_path, mode=0o400)
    assert load_credentials(with_file(path), {}).get("twilio", "auth_token")


def test_a_missing_file_is_refused(tmp_path: Path) -> None:
    path = tmp_path / "nowhere.toml"
    assert refusal(with_file(path)) == f"{path}: credentials file not found"


def test_a_directory_is_refused(tmp_path: Path) -> None:
    assert "not a regular file" in refusal(with_file(tmp_path))


def test_an_unreadable_file_is_refused(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    path = write(tmp_path)

    def denied(*args: object) -> int:
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(credentials_module.os, "open", denied)
    assert refusal(with_file(path)) == (
        f"{path}: cannot read the credentials file: Permission denied"
    )


def test_a_fifo_is_refused_without_blocking(tmp_path: Path) -> None:
    path = tmp_path / "fifo"
    os.mkfifo(path, 0o600)
    assert "not a regular file" in refusal(with_file(path))


def test_invalid_toml_is_refused_without_quoting_the_secret(tmp_path: Path) -> None:
    path = write(tmp_path, '[twilio]\nauth_token = "very-secret-value\n')
    message = refusal(with_file(path))
    assert message.startswith(f"{path}: not valid TOML")
    assert "very-secret-value" not in message


@pytest.mark.parametrize(
    ("text", "words"),
    [
        ('[twilio]\nauthtoken = "x"\n', "unknown key 'twilio.authtoken'"),
        ('[twillio]\nauth_token = "x"\n', "unknown key 'twillio.auth_token'"),
        ("[twilio]\nauth_token = 12345\n", "key 'twilio.auth_token': expected a string"),
        ('token = "x"\n', "'token' should be a table"),
    ],
)
def test_typos_are_caught_when_the_file_is_read(tmp_path: Path, text: str, words: str) -> None:
    assert words in refusal(with_file(write(tmp_path, text)))


def test_secrets_never_show_in_repr_or_pickles(tmp_path: Path) -> None:
    creds = load_credentials(with_file(write(tmp_path)), {"TOCSIN_SMSFACTOR_TOKEN": "zzz"})
    for shown in (repr(creds), str(creds), f"{creds}"):
        assert "file-twilio-token" not in shown and "zzz" not in shown
        assert "twilio.auth_token=***" in shown
    with pytest.raises(TypeError):
        pickle.dumps(creds)


def test_the_registry_builds_the_configured_provider() -> None:
    creds = Credentials(
        {
            ("twilio", "auth_token"): "t",
            ("octopush", "api_key"): "k",
            ("smsfactor", "token"): "s",
            ("endpoint", "token"): "e",
        }
    )
    public = "https://mairie.example/tocsin/"
    assert isinstance(make_provider(ProviderConfig(), creds, public), SimulatedProvider)
    twilio = make_provider(
        ProviderConfig.model_validate({"name": "twilio", "twilio": {"account_sid": "AC1"}}),
        creds,
        public,
    )
    assert isinstance(twilio, TwilioProvider)
    # Twilio proves itself by signature: no token in its callback.
    assert twilio.status_callback_for(5) == ("https://mairie.example/tocsin/reports/twilio?mid=5")
    octopush = make_provider(
        ProviderConfig.model_validate(
            {"name": "octopush", "octopush": {"api_login": "m@example.fr"}}
        ),
        creds,
        public,
    )
    assert isinstance(octopush, OctopushProvider)
    smsfactor = make_provider(ProviderConfig(name="smsfactor"), creds, public)
    assert isinstance(smsfactor, SmsFactorProvider)


def test_the_registry_names_the_missing_secret() -> None:
    with pytest.raises(CredentialsError, match="TOCSIN_SMSFACTOR_TOKEN"):
        make_provider(ProviderConfig(name="smsfactor"), Credentials({}), "http://x")


def test_kannel_needs_an_endpoint_token_that_needs_no_escaping() -> None:
    creds = Credentials({("kannel", "password"): "p", ("endpoint", "token"): "50%off"})
    with pytest.raises(CredentialsError, match=r"endpoint\.token must be made of"):
        make_provider(ProviderConfig(name="kannel"), creds, "http://127.0.0.1:8765")
    good = Credentials({("kannel", "password"): "p", ("endpoint", "token"): "Ab-9_x.y~z"})
    kannel = make_provider(ProviderConfig(name="kannel"), good, "http://127.0.0.1:8765")
    assert kannel.name == "kannel"


def test_callback_urls_carry_the_url_safe_endpoint_token() -> None:
    creds = Credentials({("endpoint", "token"): "a b&c"})
    assert report_url("http://127.0.0.1:8765/", "kannel", "a b&c") == (
        "http://127.0.0.1:8765/reports/kannel?token=a+b%26c"
    )
    urls = callback_urls(ProviderConfig(name="smsfactor"), creds, "https://m.example")
    assert urls == {
        "reports": "https://m.example/reports/smsfactor?token=a+b%26c",
        "inbound": "https://m.example/inbound/smsfactor?token=a+b%26c",
        "stop": "https://m.example/inbound/smsfactor?token=a+b%26c&kind=stop",
    }
    assert callback_urls(
        ProviderConfig.model_validate({"name": "twilio", "twilio": {"account_sid": "AC1"}}),
        creds,
        "https://m.example",
    ) == {"inbound": "https://m.example/inbound/twilio"}
    assert callback_urls(ProviderConfig(), creds, "https://m.example") == {}
