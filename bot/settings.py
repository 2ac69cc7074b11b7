"""Settings read once from the environment (and `.env`), validated at start, passed in."""

from __future__ import annotations

import os
import re
from pathlib import Path

from pydantic import Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOKEN_PATTERN = re.compile(r"^\d{3,12}:[A-Za-z0-9_-]{30,64}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one French line for the operator."""


class Settings(BaseSettings):
    """Every setting, from the environment variable of the same name (DATABASE_URL…) or .env."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(default="sqlite:///assistant-rentree.db")
    telegram_token: str | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    webhook_url: str | None = None
    webhook_secret: str | None = None
    port: int = 8080
    # Answers below this confidence are treated as out of scope.
    confidence_floor: float | None = None
    log_level: str = "INFO"
    # Where the trained intent classifier is kept between starts (keyed by the knowledge).
    model_cache_dir: Path = Field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assistant-rentree"
        )
    )

    @field_validator("database_url")
    @classmethod
    def _database_url_has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(
                "DATABASE_URL doit être une URL SQLAlchemy (ex. sqlite:///fichier.db)"
            )
        return value

    def require_telegram_token(self) -> str:
        """The token, or a one-line French reason why the Telegram front end cannot start."""
        if not self.telegram_token:
            raise SettingsError("TELEGRAM_TOKEN manquant : donnez le jeton fourni par @BotFather.")
        if not TOKEN_PATTERN.match(self.telegram_token.strip()):
            raise SettingsError(
                "TELEGRAM_TOKEN mal formé : attendu « 123456789:ABC… » (jeton de @BotFather)."
            )
        return self.telegram_token.strip()


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; a validation error becomes one French line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        reasons = "; ".join(
            f"{'.'.join(str(part) for part in item['loc']).upper()} : "
            f"{str(item['msg']).removeprefix('Value error, ')}"
            for item in error.errors()
        )
        raise SettingsError(f"Configuration invalide — {reasons}") from None
