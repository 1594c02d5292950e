"""Settings: defaults < TOML file < environment < flags.

Environment names are ``NVDSYNC_<FIELD>`` (``NVDSYNC_DB``, ``NVDSYNC_API_URL``,
``NVDSYNC_PAGE_SIZE`` ...) plus NVD's conventional ``NVD_API_KEY``. The TOML file is
``--config``, else ``$NVDSYNC_CONFIG``, else ``~/.config/nvdsync/config.toml`` when it
exists; its keys are the field names (``db = "..."``, ``page_size = 1000``).

The API key is a ``SecretStr``: it prints as ``**********`` everywhere.
"""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Any, ClassVar

from pydantic import AliasChoices, Field, SecretStr, ValidationError, field_validator
from pydantic_settings import (
    BaseSettings,
    PydanticBaseSettingsSource,
    SettingsConfigDict,
    TomlConfigSettingsSource,
)

from nvdsync.errors import ConfigError

__all__ = ["DEFAULT_API_URL", "Settings", "default_db_path", "load_settings"]

DEFAULT_API_URL = "https://services.nvd.nist.gov/rest/json/cves/2.0"
MAX_PAGE_SIZE = 2000  # NVD's documented maximum (and default) for the CVE API
_RATE_RE = re.compile(r"^\s*(\d+)\s*/\s*(\d+(?:\.\d+)?)\s*s?\s*$")


def default_db_path() -> Path:
    """``$XDG_DATA_HOME/nvdsync/nvd.sqlite`` (``~/.local/share/...`` by default)."""
    base = os.environ.get("XDG_DATA_HOME") or str(Path.home() / ".local" / "share")
    return Path(base) / "nvdsync" / "nvd.sqlite"


def default_config_path() -> Path:
    base = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return Path(base) / "nvdsync" / "config.toml"


class Settings(BaseSettings):
    """Every tunable of nvdsync, validated on construction."""

    model_config = SettingsConfigDict(
        env_prefix="NVDSYNC_", extra="forbid", frozen=True, populate_by_name=True
    )
    _toml_file: ClassVar[Path | None] = None

    db: str = Field(default_factory=lambda: str(default_db_path()))
    api_url: str = DEFAULT_API_URL
    api_key: SecretStr | None = Field(
        default=None, validation_alias=AliasChoices("api_key", "NVDSYNC_API_KEY", "NVD_API_KEY")
    )
    page_size: int = Field(default=MAX_PAGE_SIZE, ge=1, le=MAX_PAGE_SIZE)
    batch_size: int = Field(default=50, ge=1, le=5000)
    rate_limit: str = "auto"  # "auto" (NVD's 5/30 s, 50/30 s with a key), "N/SECONDS" or "off"
    workers: int = Field(default=1, ge=1, le=16)
    max_retries: int = Field(default=8, ge=0, le=100)
    retry_budget: float = Field(default=1800.0, gt=0)  # seconds of retry waiting per run
    backoff_base: float = Field(default=2.0, ge=0)
    backoff_max: float = Field(default=120.0, ge=0)
    timeout: float = Field(default=180.0, gt=0)  # NVD pages can take 60 s+ under load
    # A whole page (headers and body) must arrive within this: a body trickling in
    # slower than `timeout` per read would otherwise hold a page forever.
    page_deadline: float = Field(default=900.0, gt=0)
    overlap_minutes: float = Field(default=60.0, ge=0)
    catchup_passes: int = Field(default=3, ge=1, le=10)
    spool_kb: int = Field(default=1024, ge=1)  # page bytes kept in RAM before a temp file
    memory_warning_mb: float = Field(default=1024.0, gt=0)
    memory_critical_mb: float = Field(default=2048.0, gt=0)
    auto_gc: bool = True
    # --- memory policy (issue 4). A GC interval of None means "off".
    gc_every_batches: int | None = Field(default=None, ge=1)
    gc_every_pages: int | None = Field(default=None, ge=1)
    gc_every_db_batches: int | None = Field(default=None, ge=1)
    memory_log_every_pages: int = Field(default=10, ge=0)  # 0: only start, crossings, end
    memory_sample_seconds: float = Field(default=1.0, gt=0)
    # --- read side (issues 4 and 5)
    cache_size: int = Field(default=50, ge=0)  # entries; 0 disables the cache
    cache_max_mb: float = Field(default=16.0, gt=0)
    # Entries expire so a sync by another process is seen within this (nvdsync.cache).
    cache_ttl_seconds: float = Field(default=60.0, gt=0)
    serve_host: str = "127.0.0.1"
    serve_port: int = Field(default=8080, ge=0, le=65535)
    serve_token: SecretStr | None = None  # bearer token for state-changing endpoints
    serve_api_keys: list[str] = Field(default_factory=list)  # empty: apiKey header ignored
    sync_every: str | None = None  # e.g. "2h", "30m": scheduled incremental sync in serve

    @field_validator("rate_limit")
    @classmethod
    def _check_rate(cls, value: str) -> str:
        parse_rate_limit(value, has_key=False)
        return value

    @field_validator("gc_every_batches", "gc_every_pages", "gc_every_db_batches", mode="before")
    @classmethod
    def _gc_off(cls, value: object) -> object:
        if isinstance(value, str) and value.strip().lower() in {"off", "none", "0", ""}:
            return None
        return value

    @field_validator("api_url")
    @classmethod
    def _check_url(cls, value: str) -> str:
        if not value.startswith(("http://", "https://")):
            raise ValueError("must start with http:// or https://")
        return value.rstrip("/")

    @classmethod
    def settings_customise_sources(
        cls,
        settings_cls: type[BaseSettings],
        init_settings: PydanticBaseSettingsSource,
        env_settings: PydanticBaseSettingsSource,
        dotenv_settings: PydanticBaseSettingsSource,
        file_secret_settings: PydanticBaseSettingsSource,
    ) -> tuple[PydanticBaseSettingsSource, ...]:
        sources: list[PydanticBaseSettingsSource] = [init_settings, env_settings]
        if cls._toml_file is not None:
            sources.append(TomlConfigSettingsSource(settings_cls, toml_file=cls._toml_file))
        return tuple(sources)

    def rate(self) -> tuple[int, float] | None:
        """The effective (requests, seconds) limit, or None when off."""
        return parse_rate_limit(self.rate_limit, has_key=self.api_key is not None)

    def api_key_value(self) -> str | None:
        return self.api_key.get_secret_value() if self.api_key is not None else None

    def public_dict(self) -> dict[str, Any]:
        """Effective settings for display, the key masked."""
        data = self.model_dump()
        data["api_key"] = "**********" if self.api_key is not None else None
        data["serve_token"] = "**********" if self.serve_token is not None else None
        data["effective_rate_limit"] = (
            "off" if (r := self.rate()) is None else f"{r[0]}/{r[1]:g}s"
        )
        return data


def parse_rate_limit(value: str, *, has_key: bool) -> tuple[int, float] | None:
    text = value.strip().lower()
    if text == "off":
        return None
    if text == "auto":
        return (50, 30.0) if has_key else (5, 30.0)
    match = _RATE_RE.match(text)
    if not match or int(match.group(1)) < 1 or float(match.group(2)) <= 0:
        raise ValueError(f"rate limit {value!r} is not N/SECONDS (e.g. 5/30), 'auto' or 'off'")
    return int(match.group(1)), float(match.group(2))


def load_settings(config_file: Path | None = None, **flags: Any) -> Settings:
    """Build settings with flags (non-None values) over env over the TOML file.

    Raises ConfigError naming the offending setting.
    """
    path = config_file or (Path(p) if (p := os.environ.get("NVDSYNC_CONFIG")) else None)
    if path is not None and not path.is_file():
        raise ConfigError(f"config file {path} does not exist; fix --config/NVDSYNC_CONFIG")
    if path is None and default_config_path().is_file():
        path = default_config_path()

    class _Loaded(Settings):
        _toml_file = path

    _Loaded.__name__ = "Settings"
    given = {k: v for k, v in flags.items() if v is not None}
    try:
        return _Loaded(**given)
    except ValidationError as exc:
        problems = "; ".join(
            f"{'.'.join(str(p) for p in err['loc']) or 'settings'}: {err['msg']}"
            for err in exc.errors()
        )
        origin = f" (config file {path})" if path else ""
        raise ConfigError(f"invalid settings{origin}: {problems}") from None
    except (OSError, ValueError) as exc:  # unreadable or malformed TOML
        raise ConfigError(f"cannot read config file {path}: {exc}") from exc
