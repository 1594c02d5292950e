"""Settings precedence (flags > env > TOML > defaults) and key masking."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from typer.testing import CliRunner

from nvdsync.cli import app
from nvdsync.config import load_settings
from nvdsync.errors import ConfigError


@pytest.fixture
def toml(tmp_path: Path) -> Path:
    path = tmp_path / "nvdsync.toml"
    path.write_text('page_size = 1000\nbatch_size = 20\nworkers = 2\napi_key = "from-file"\n')
    return path


def test_precedence_flags_over_env_over_file_over_defaults(toml, monkeypatch):
    monkeypatch.setenv("NVDSYNC_BATCH_SIZE", "30")
    monkeypatch.setenv("NVD_API_KEY", "from-env")
    settings = load_settings(toml, workers=3)
    assert settings.workers == 3  # flag
    assert settings.batch_size == 30  # env
    assert settings.page_size == 1000  # file
    assert settings.max_retries == 8  # default
    assert settings.api_key_value() == "from-env"
    assert load_settings(toml, api_key="from-flag").api_key_value() == "from-flag"


def test_rate_limit_defaults_follow_nvd(monkeypatch):
    assert load_settings().rate() == (5, 30.0)
    assert load_settings(api_key="k").rate() == (50, 30.0)
    assert load_settings(rate_limit="5/3").rate() == (5, 3.0)
    assert load_settings(rate_limit="off").rate() is None


@pytest.mark.parametrize(("flags", "needle"), [
    ({"page_size": 2001}, "page_size"),
    ({"rate_limit": "fast"}, "rate_limit"),
    ({"api_url": "ftp://x"}, "api_url"),
    ({"workers": 0}, "workers"),
])
def test_invalid_settings_name_the_setting(flags, needle):
    with pytest.raises(ConfigError, match=needle):
        load_settings(**flags)


def test_missing_config_file_is_a_config_error(tmp_path):
    with pytest.raises(ConfigError, match="does not exist"):
        load_settings(tmp_path / "nope.toml")


def test_cli_usage_errors_exit_2_and_config_show_masks_the_key(toml, monkeypatch):
    runner = CliRunner()
    bad = runner.invoke(app, ["sync", "--page-size", "5000", "--db", "x.sqlite"])
    assert bad.exit_code == 2 and "page_size" in bad.stderr
    unknown = runner.invoke(app, ["sync", "--no-such-flag"])
    assert unknown.exit_code == 2
    shown = runner.invoke(app, ["--config", str(toml), "config", "show", "--json"])
    assert shown.exit_code == 0
    data = json.loads(shown.stdout)
    assert data["api_key"] == "**********" and "from-file" not in shown.stdout
    assert data["effective_rate_limit"] == "50/30s"


def test_settings_repr_never_shows_the_key():
    settings = load_settings(api_key="s3cret-key")
    assert "s3cret-key" not in repr(settings) and "s3cret-key" not in str(settings)
