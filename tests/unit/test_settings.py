from pathlib import Path

import pytest

from daemon.settings import Settings, SettingsError, describe


def test_defaults_need_no_environment_at_all():
    settings = Settings.from_env({})
    assert (settings.host, settings.port) == ("127.0.0.1", 8420)
    assert settings.database_url is None and settings.redis_url is None
    assert settings.vector_backend == "local"
    assert settings.registration == "closed"


def test_data_dir_follows_xdg_data_home(monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_DATA_HOME", str(tmp_path))
    assert Settings.from_env({}).data_dir == tmp_path / "bastion"


def test_data_dir_from_its_variable():
    assert Settings.from_env({"BASTION_DATA_DIR": "/srv/bastion"}).data_dir == Path("/srv/bastion")


@pytest.mark.parametrize(
    ("variable", "value", "expected"),
    [
        ("BASTION_PORT", "eighty", "BASTION_PORT: expected an integer from 0 to 65535"),
        ("BASTION_PORT", "70000", "BASTION_PORT: expected an integer from 0 to 65535"),
        ("BASTION_DATABASE_URL", "mysql://x", "BASTION_DATABASE_URL: expected a URL starting with"),
        ("BASTION_REGISTRATION", "maybe", "BASTION_REGISTRATION: expected one of open, closed"),
        ("BASTION_AUTO_MIGRATE", "perhaps", "BASTION_AUTO_MIGRATE: expected true or false"),
        ("BASTION_CORS_ORIGINS", "null", "BASTION_CORS_ORIGINS: expected comma-separated origins"),
        ("BASTION_TRUSTED_PROXIES", "10.0.0.300", "BASTION_TRUSTED_PROXIES: expected comma-separated IP"),
    ],
)
def test_a_bad_value_names_the_variable_and_what_it_expects(variable, value, expected):
    with pytest.raises(SettingsError) as caught:
        Settings.from_env({variable: value})
    assert str(caught.value).startswith(expected)


def test_secrets_never_show_in_the_settings_repr():
    settings = Settings.from_env({"PINECONE_API_KEY": "pc-secret-123", "VAULT_TOKEN": "hvs.secret"})
    assert "pc-secret-123" not in repr(settings) and "hvs.secret" not in repr(settings)


def test_help_lists_every_setting():
    text = describe()
    for name in ("BASTION_DATA_DIR", "BASTION_DATABASE_URL", "BASTION_REDIS_URL", "PINECONE_API_KEY", "VAULT_ADDR"):
        assert name in text
