"""Configuration: environment over TOML file over defaults, clear errors, secrets made once and private."""

import stat

import pytest

from glint import config


def test_defaults_are_the_safe_ones(tmp_path):
    values = config.load({"GLINT_DATA_DIR": str(tmp_path)})
    assert values["debug"] is False
    assert values["trusted_proxies"] == []
    assert values["data_dir"] == str(tmp_path.resolve())


def test_environment_beats_file_beats_default(tmp_path):
    toml = tmp_path / "glint.toml"
    toml.write_text('poll_interval = 60\ntrusted_proxies = ["127.0.0.2"]\ndebug = true\n')
    values = config.load({"GLINT_CONFIG": str(toml), "GLINT_POLL_INTERVAL": "30", "GLINT_DATA_DIR": str(tmp_path)})
    assert values["poll_interval"] == 30
    assert values["trusted_proxies"] == ["127.0.0.2"]
    assert values["debug"] is True
    assert config.load({"GLINT_TRUSTED_PROXIES": "127.0.0.2, unix"})["trusted_proxies"] == ["127.0.0.2", "unix"]


@pytest.mark.parametrize(
    "environ, message",
    [
        ({"GLINT_POLL_INTERVAL": "often"}, "GLINT_POLL_INTERVAL must be a whole number"),
        ({"GLINT_DEBUG": "maybe"}, "GLINT_DEBUG must be true or false"),
    ],
)
def test_bad_values_name_the_setting(environ, message):
    with pytest.raises(config.ConfigError, match=message):
        config.load(environ)


def test_unknown_or_broken_config_file_is_refused(tmp_path):
    toml = tmp_path / "glint.toml"
    toml.write_text("pol_interval = 5\n")
    with pytest.raises(config.ConfigError, match="unknown setting.*pol_interval"):
        config.load({"GLINT_CONFIG": str(toml)})
    toml.write_text("poll_interval = \n")
    with pytest.raises(config.ConfigError, match="cannot read GLINT_CONFIG"):
        config.load({"GLINT_CONFIG": str(toml)})


def test_database_urls(tmp_path):
    assert config.parse_database_url("", tmp_path).name == str(tmp_path / "glint.sqlite3")
    pg = config.parse_database_url("postgresql://glint:s%40cret@db.example:5433/images", tmp_path)
    assert (pg.engine, pg.user, pg.password, pg.host, pg.port, pg.name) == (
        "django.db.backends.postgresql", "glint", "s@cret", "db.example", "5433", "images")
    with pytest.raises(config.ConfigError, match="scheme 'mysql' is not supported"):
        config.parse_database_url("mysql://x/y", tmp_path)


def test_secrets_are_generated_once_and_private(tmp_path):
    first = config.secret_key(tmp_path)
    assert config.secret_key(tmp_path) == first
    keys = config.credential_keys(tmp_path)
    assert len(keys) == 1 and config.credential_keys(tmp_path) == keys
    for name in ("secret_key", "credential_keys"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600
