"""Settings from the environment and .env; bad values stop start-up with one line."""

from __future__ import annotations

import dataclasses

import pytest

from config import ConfigError, Settings, load_settings
from utils import sandbox


def test_defaults_are_the_original_readme_values():
    settings = load_settings({}, dotenv_path=None)
    assert (settings.rate_limit_calls, settings.rate_limit_window, settings.request_timeout) == (20, 60, 30)
    assert (settings.max_batch_size, settings.max_workers) == (100, 5)
    assert (settings.max_retries, settings.retry_delay_base) == (3, 2)
    assert (settings.log_level, settings.port, settings.default_country) == ("INFO", 5000, "US")
    assert (settings.sp_api_rate, settings.sp_api_burst) == (2, 2)
    assert settings.mode == "emulator"


def test_environment_wins_over_dotenv(tmp_path):
    dotenv = tmp_path / ".env"
    dotenv.write_text("MAX_WORKERS=7\nPORT=6000\nDEFAULT_COUNTRY=uk\n")
    settings = load_settings({"PORT": "7000"}, dotenv_path=str(dotenv))
    assert (settings.max_workers, settings.port, settings.default_country) == (7, 7000, "GB")


@pytest.mark.parametrize(
    ("env", "variable"),
    [
        ({"MAX_WORKERS": "abc"}, "MAX_WORKERS"),
        ({"RATE_LIMIT_CALLS": "0"}, "RATE_LIMIT_CALLS"),
        ({"RATE_LIMIT_WINDOW": "-1"}, "RATE_LIMIT_WINDOW"),
        ({"REQUEST_TIMEOUT": "soon"}, "REQUEST_TIMEOUT"),
        ({"LOG_LEVEL": "LOUD"}, "LOG_LEVEL"),
        ({"DEFAULT_COUNTRY": "XX"}, "DEFAULT_COUNTRY"),
        ({"SP_API_ENDPOINT": "localhost:8001"}, "SP_API_ENDPOINT"),
        ({"SP_API_RATE_MARGIN": "0.9"}, "SP_API_RATE_MARGIN"),
        ({"RETRY_DELAY_BASE": "0.5"}, "RETRY_DELAY_BASE"),
        ({"RATE_LIMIT_BACKEND": "postgres"}, "RATE_LIMIT_BACKEND"),
        ({"CACHE_BACKEND": "memcached"}, "CACHE_BACKEND"),
        ({"CACHE_TTL": "0"}, "CACHE_TTL"),
        ({"SP_API_PACE_RECOVERY": "never"}, "SP_API_PACE_RECOVERY"),
        ({"REDIS_URL": "localhost:6379"}, "REDIS_URL"),
        ({"SELLER_ID": "a2emulatorseller"}, "SELLER_ID"),
        ({"SELLER_ID": "A12345678"}, "SELLER_ID"),
        ({"SELLER_ID": "B2EMULATORSELLER"}, "SELLER_ID"),
    ],
)
def test_bad_values_name_the_variable_in_one_line(env, variable):
    with pytest.raises(ConfigError) as caught:
        load_settings(env, dotenv_path=None)
    message = str(caught.value)
    assert message.startswith(variable) and "\n" not in message


def test_backends_are_case_insensitive_and_a_redis_password_is_never_shown(client):
    settings = load_settings({"RATE_LIMIT_BACKEND": "Redis", "CACHE_BACKEND": "NONE", "REDIS_URL": "redis://:hunter22@cache:6379/1"}, None)
    assert (settings.rate_limit_backend, settings.cache_backend) == ("redis", "none")
    assert settings.public_view()["REDIS_URL"] == "redis://:***@cache:6379/1"
    assert "hunter22" in settings.secrets()
    with pytest.raises(ConfigError) as caught:
        load_settings({"REDIS_URL": "http://:hunter22@cache"}, dotenv_path=None)
    assert "hunter22" not in str(caught.value)
    shown = client.get("/config").get_json()["settings"]
    assert {shown[name] for name in ("RATE_LIMIT_BACKEND", "CACHE_BACKEND")} == {"sqlite"}
    assert shown["CACHE_TTL"] == 86400 and shown["CACHE_NOT_FOUND_TTL"] == 3600


def test_partial_credentials_are_refused_without_showing_them():
    with pytest.raises(ConfigError) as caught:
        load_settings({"LWA_APP_ID": "amzn1.application-oa2-client.x", "LWA_CLIENT_SECRET": "s3cret"}, dotenv_path=None)
    assert "SP_API_REFRESH_TOKEN" in str(caught.value) and "s3cret" not in str(caught.value)


def test_credentials_mean_live_mode_whatever_the_endpoint():
    settings = load_settings(
        {"LWA_APP_ID": "a", "LWA_CLIENT_SECRET": "b", "SP_API_REFRESH_TOKEN": "c", "SP_API_ENDPOINT": "http://127.0.0.1:8001"},
        dotenv_path=None,
    )
    assert settings.mode == "live"
    assert settings.token_url() == "https://api.amazon.com/auth/o2/token"
    assert Settings(sp_api_endpoint="http://127.0.0.1:9").token_url() == "http://127.0.0.1:9/auth/o2/token"
    assert Settings(lwa_endpoint="http://127.0.0.1:9/t").token_url() == "http://127.0.0.1:9/t"


def test_env_example_and_readme_list_every_variable_with_its_default():
    from pathlib import Path

    root = Path(__file__).resolve().parents[1]
    example = dict(line.split("=", 1) for line in (root / ".env.example").read_text().splitlines() if line and not line.startswith("#"))
    readme = (root / "README.md").read_text()
    defaults = Settings()
    for spec in dataclasses.fields(Settings):
        name = spec.name.upper()
        assert name in example, f"{name} missing from .env.example"
        assert f"`{name}`" in readme, f"{name} missing from README.md"
        # The value shown in .env.example is the default.
        assert load_settings({name: example[name]}, dotenv_path=None) == defaults or example[name] == "", name


def test_seller_id_is_a_merchant_token_and_the_emulators_own_in_emulator_mode(client):
    live = {"LWA_APP_ID": "a", "LWA_CLIENT_SECRET": "b", "SP_API_REFRESH_TOKEN": "c"}
    assert load_settings({"SELLER_ID": " A1B2C3D4E5F6G7 "}, dotenv_path=None).seller_id == "A1B2C3D4E5F6G7"
    assert load_settings({}, dotenv_path=None).effective_seller_id() == sandbox.SELLER_ID
    assert load_settings(live, dotenv_path=None).effective_seller_id() == ""  # restrictions then fail SELLER_ID_MISSING
    assert load_settings({**live, "SELLER_ID": "A1B2C3D4E5F6G7"}, dotenv_path=None).effective_seller_id() == "A1B2C3D4E5F6G7"
    assert Settings(seller_id="A1B2C3D4E5F6G7").public_view()["SELLER_ID"] == "A1B2C3D4E5F6G7"
    assert client.get("/config").get_json()["settings"]["SELLER_ID"] == ""
