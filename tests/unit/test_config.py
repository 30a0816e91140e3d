"""Settings: defaults, TOML file, environment overrides and one-line errors."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from click.testing import CliRunner

from dialer.cli import main
from dialer.config import ConfigError, Settings, load_settings, redacted


def test_defaults_without_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    settings = load_settings(env={})
    assert settings == Settings()
    assert settings.ami.host == "127.0.0.1"
    assert settings.agi.listen_host == "127.0.0.1"
    assert settings.database.url.get_secret_value().startswith("sqlite+aiosqlite:")


def test_file_values_and_env_overrides(tmp_path: Path) -> None:
    cfg = tmp_path / "dialer.toml"
    cfg.write_text('[ami]\nport = 6038\nsecret = "fromfile"\n[asterisk]\nseat_count = 12\n')
    env = {
        "DIALER_AMI_SECRET": "fromenv",
        "DIALER_DATABASE_URL": "postgresql+psycopg://u@127.0.0.1/db",
        "DIALER_REDIS_URL": "redis://127.0.0.1:6379/0",
        "DIALER_ASTERISK_CODECS": "alaw, g722",
    }
    settings = load_settings(cfg, env=env)
    assert settings.ami.port == 6038
    assert settings.ami.secret.get_secret_value() == "fromenv"
    assert settings.database.url.get_secret_value() == "postgresql+psycopg://u@127.0.0.1/db"
    assert settings.redis.url.get_secret_value() == "redis://127.0.0.1:6379/0"
    assert settings.asterisk.seat_count == 12
    assert settings.asterisk.codecs == ("alaw", "g722")


def test_missing_explicit_file_is_one_line_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(tmp_path / "nope.toml", env={})
    assert "nope.toml" in str(err.value) and "does not exist" in str(err.value)
    assert "\n" not in str(err.value)


def test_wrong_value_names_key_and_file(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text("[ami]\nport = 99999\n")
    with pytest.raises(ConfigError) as err:
        load_settings(cfg, env={})
    text = str(err.value)
    assert text.startswith(f"{cfg}: ami.port:") and "\n" not in text


def test_wrong_env_value_names_the_variable(tmp_path: Path) -> None:
    with pytest.raises(ConfigError) as err:
        load_settings(env={"DIALER_AGI_PORT": "not-a-port"}, path=None)
    assert str(err.value).startswith("environment variable DIALER_AGI_PORT: agi.port:")


def test_unknown_key_is_rejected(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text("[ami]\nprot = 1\n")
    with pytest.raises(ConfigError, match=r"ami\.prot: unknown setting"):
        load_settings(cfg, env={})


def test_bad_toml(tmp_path: Path) -> None:
    cfg = tmp_path / "site.toml"
    cfg.write_text("[ami\n")
    with pytest.raises(ConfigError, match="not valid TOML"):
        load_settings(cfg, env={})


def test_config_show_masks_secrets(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.chdir(tmp_path)
    monkeypatch.setenv("DIALER_AMI_SECRET", "s3cr3t-value")
    monkeypatch.setenv("DIALER_REDIS_URL", "redis://sup:pw-xyz@127.0.0.1:6379/0")
    result = CliRunner().invoke(main, ["config", "show"])
    assert result.exit_code == 0, result.output
    assert "s3cr3t-value" not in result.output and "pw-xyz" not in result.output
    shown = json.loads(result.output)
    assert shown["ami"]["secret"] == "***"
    assert redacted(load_settings())["redis"]["url"] == "***"


def test_cli_reports_config_error_in_one_line(tmp_path: Path) -> None:
    result = CliRunner().invoke(main, ["--config", str(tmp_path / "x.toml"), "config", "show"])
    assert result.exit_code != 0
    assert "config file does not exist" in result.output
