"""Settings read once from the environment (and `.env`), validated at start, passed in."""

from __future__ import annotations

import os
import re
from pathlib import Path
from typing import Literal

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

TOKEN_PATTERN = re.compile(r"^\d{3,12}:[A-Za-z0-9_-]{30,64}$")


class SettingsError(ValueError):
    """A setting is missing or malformed; the message is one French line for the operator."""


class Settings(BaseSettings):
    """Every setting, from the environment variable of the same name (DATABASE_URL…) or .env."""

    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    database_url: str = Field(default="sqlite:///assistant-rentree.db")
    # Secrets: SecretStr keeps them out of repr(), str() and tracebacks (« ********** »);
    # read them only with get_secret_value(), where they are actually sent.
    telegram_token: SecretStr | None = None
    telegram_api_url: str = "https://api.telegram.org/bot"
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    port: int = 8080
    # Answers below this confidence are treated as out of scope.
    confidence_floor: float | None = None
    log_level: str = "INFO"
    # `text` for a console, `json` in production: one JSON object per line (bot.logs).
    log_format: Literal["text", "json"] = "text"
    # Worker threads running the synchronous core off the event loop, per instance: at most
    # this many database connections busy with messages at once (SQLite: always one).
    core_workers: int = Field(default=8, ge=1, le=64)
    # Seconds between two looks for due scheduled jobs (bot/channels/telegram/ticker.py).
    job_tick_seconds: float = Field(default=10, gt=0, le=3600)
    # Personal data (README « Données personnelles »): idle conversation states, failed
    # link attempts and spent link codes are purged after RETENTION_DAYS; the audit log of
    # director actions is kept longer, to trace changes to the directory (bot.storage.retention).
    retention_days: int = Field(default=90, ge=1, le=3650)
    audit_retention_days: int = Field(default=365, ge=1, le=3650)
    # The circonscription whose eRun receives the questions of people whose school is not
    # known (bot/core/tickets.py); unset: the directory's first circonscription.
    ticket_default_queue: str | None = None
    # Whom /privacy names for questions about personal data. The school document gives no
    # address for the académie's DPD, so the default invents none.
    privacy_contact: str = (
        "le délégué à la protection des données (DPD) de l'académie ; votre eRun de "
        "circonscription vous dit comment le joindre"
    )
    # Where the trained intent classifier is kept between starts (keyed by the knowledge).
    model_cache_dir: Path = Field(
        default_factory=lambda: (
            Path(os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache") / "assistant-rentree"
        )
    )

    # Phrasings taught in chat become training examples: the model is trained again with
    # them in the background (intents/nlu/retraining.py). Off, they are read beside it only.
    retrain_taught: bool = True

    # The directory acted on: the assistant's own copy (`local`, the default), or the ENT
    # over its HTTP API (`entcore`, bot/entcore), as the director signed in with OAuth2.
    directory_backend: Literal["local", "entcore"] = "local"
    ent_url: str | None = None
    ent_client_id: str | None = None
    ent_client_secret: SecretStr | None = None
    # Where the ENT sends the director back: PUBLIC_URL + "/oauth/callback".
    public_url: str | None = None
    # Fernet key(s) encrypting the ENT tokens at rest; comma-separated, the first encrypts.
    ent_token_key: SecretStr | None = None
    # A bearer token to act with from the console and scripts (`chat --as`), no sign-in.
    ent_access_token: SecretStr | None = None
    ent_cache_seconds: float = Field(default=30, ge=0, le=3600)

    @field_validator("ent_url", "public_url")
    @classmethod
    def _http_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        if not value.startswith(("https://", "http://")):
            raise ValueError("doit être une URL http(s)://… (ex. https://ent.example.org)")
        return value

    @field_validator("ent_token_key")
    @classmethod
    def _fernet_key(cls, value: SecretStr | None) -> SecretStr | None:
        if value is None or not value.get_secret_value().strip():
            return None
        from bot.storage.ent_tokens import fernet_of  # cryptography only when configured

        try:
            fernet_of(value.get_secret_value())
        except ValueError:
            raise ValueError(
                "doit être une clé Fernet (32 octets en base64 URL, ex. la sortie de "
                "« python -c 'from cryptography.fernet import Fernet; "
                "print(Fernet.generate_key().decode())' »)"
            ) from None
        return value

    @model_validator(mode="after")
    def _entcore_is_configured(self) -> Settings:
        if self.directory_backend != "entcore":
            return self
        if self.ent_url is None:
            raise ValueError("DIRECTORY_BACKEND=entcore demande ENT_URL (l'adresse de l'ENT)")
        missing = self.missing_ent_oauth()
        # ENT_ACCESS_TOKEN alone serves the console; any OAuth setting asks for all of them.
        if missing and (self.ent_access_token is None or len(missing) < 4):
            raise ValueError(
                "DIRECTORY_BACKEND=entcore demande, pour la connexion des directeurs à l'ENT, "
                f"{', '.join(missing)} (ou ENT_ACCESS_TOKEN seul pour la console)"
            )
        return self

    def missing_ent_oauth(self) -> list[str]:
        """The settings the ENT sign-in (OAuth2) needs and lacks, by their variable names."""
        wanted = {
            "ENT_CLIENT_ID": self.ent_client_id,
            "ENT_CLIENT_SECRET": self.ent_client_secret,
            "PUBLIC_URL": self.public_url,
            "ENT_TOKEN_KEY": self.ent_token_key,
        }
        return [name for name, value in wanted.items() if not value]

    @field_validator("database_url")
    @classmethod
    def _database_url_has_scheme(cls, value: str) -> str:
        if "://" not in value:
            raise ValueError(
                "DATABASE_URL doit être une URL SQLAlchemy (ex. sqlite:///fichier.db)"
            )
        return value

    @property
    def database_url_given(self) -> bool:
        """True when DATABASE_URL came from the environment, .env or an argument; False for
        the embedded default, the one database that may migrate and fill itself at start."""
        # pydantic-settings passes what its sources found as arguments: they count as set.
        return "database_url" in self.model_fields_set

    def require_telegram_token(self) -> str:
        """The token, or a one-line French reason why the Telegram front end cannot start."""
        token = self.telegram_token.get_secret_value().strip() if self.telegram_token else ""
        if not token:
            raise SettingsError("TELEGRAM_TOKEN manquant : donnez le jeton fourni par @BotFather.")
        if not TOKEN_PATTERN.match(token):
            raise SettingsError(
                "TELEGRAM_TOKEN mal formé : attendu « 123456789:ABC… » (jeton de @BotFather)."
            )
        return token

    def secrets(self) -> list[str]:
        """Every SecretStr setting that is set, for the log filter to mask (bot.logs); a
        secret field added later is masked too."""
        values = (getattr(self, name) for name in type(self).model_fields)
        found = (v.get_secret_value().strip() for v in values if isinstance(v, SecretStr))
        return [secret for secret in found if secret]


def load_settings(**overrides: object) -> Settings:
    """Read the environment once; a validation error becomes one French line."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as error:
        reasons = "; ".join(
            # A check across settings (model_validator) has no field: its message names them.
            (f"{'.'.join(str(part) for part in item['loc']).upper()} : " if item["loc"] else "")
            + str(item["msg"]).removeprefix("Value error, ")
            for item in error.errors()
        )
        raise SettingsError(f"Configuration invalide — {reasons}") from None
