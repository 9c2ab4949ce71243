"""Configuration: environment over TOML file over defaults, clear errors, secrets made once and
private."""

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
    values = config.load(
        {"GLINT_CONFIG": str(toml), "GLINT_POLL_INTERVAL": "30", "GLINT_DATA_DIR": str(tmp_path)}
    )
    assert values["poll_interval"] == 30
    assert values["trusted_proxies"] == ["127.0.0.2"]
    assert values["debug"] is True
    assert config.load({"GLINT_TRUSTED_PROXIES": "127.0.0.2, unix"})["trusted_proxies"] == [
        "127.0.0.2",
        "unix",
    ]


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
        "django.db.backends.postgresql",
        "glint",
        "s@cret",
        "db.example",
        "5433",
        "images",
    )
    with pytest.raises(config.ConfigError, match="scheme 'mysql' is not supported"):
        config.parse_database_url("mysql://x/y", tmp_path)


def test_secrets_are_generated_once_and_private(tmp_path):
    first = config.secret_key(tmp_path)
    assert config.secret_key(tmp_path) == first
    keys = config.credential_keys(tmp_path)
    assert len(keys) == 1 and config.credential_keys(tmp_path) == keys
    for name in ("secret_key", "credential_keys"):
        assert stat.S_IMODE((tmp_path / name).stat().st_mode) == 0o600


def test_job_runner_and_broker_url_are_checked_and_the_password_never_shown():
    assert config.job_runner(" Celery ") == "celery"
    with pytest.raises(
        config.ConfigError, match="GLINT_JOB_RUNNER must be one of embedded, celery"
    ):
        config.job_runner("rq")
    assert config.broker_url("", "embedded") == ""
    with pytest.raises(config.ConfigError, match="GLINT_JOB_RUNNER=celery needs GLINT_BROKER_URL"):
        config.broker_url("", "celery")
    for good in (
        "redis://127.0.0.1:6379/0",
        "rediss://:pw@redis.example:6380",
        "redis://user:pw@redis.example/2",
    ):
        assert config.broker_url(good, "celery") == good
    for bad in (
        "amqp://guest:s3cret@rabbit/",
        "redis://:s3cret@/0",
        "redis://:s3cret@host:port/0",
        "redis://:s3cret@host/zero",
    ):
        with pytest.raises(config.ConfigError, match="GLINT_BROKER_URL must look like") as refused:
            config.broker_url(bad, "celery")
        assert "s3cret" not in str(refused.value) and ":***@" in str(refused.value)
    assert config.redact_url("redis://user:pw@host:1/0") == "redis://user:***@host:1/0"
    assert config.redact_url("redis://host:1/0") == "redis://host:1/0"


def test_the_debug_page_hides_the_broker_url(settings):
    from django.views.debug import get_default_exception_reporter_filter

    settings.GLINT_BROKER_URL = "redis://:hunter2@127.0.0.1:6379/0"
    shown = get_default_exception_reporter_filter().get_safe_settings()
    assert "hunter2" not in str(shown["GLINT_BROKER_URL"]) and "hunter2" not in str(shown)
