"""Settings read from the environment or a `.env` file (see README: Configuration)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated

from pydantic import Field, SecretStr, ValidationError, field_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/consultbot.db"
TOKEN_PATTERN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,64}$")


class ConfigError(Exception):
    """A one-line, human-readable configuration problem (shown without a traceback)."""


class Settings(BaseSettings):
    model_config = SettingsConfigDict(env_file=".env", env_file_encoding="utf-8", extra="ignore")

    bot_token: SecretStr | None = None
    telegram_api_url: str | None = None
    database_url: str = DEFAULT_DATABASE_URL
    redis_url: str | None = None
    consultation_file: Path = Path("consultations/deconfinement.yaml")
    admin_ids: Annotated[frozenset[int], NoDecode] = frozenset()
    moderation_chat_id: int | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1:8080"
    # Telegram allows about 30 messages/s overall; keep a margin by default.
    broadcast_rate: float = Field(default=25.0, gt=0)
    # An instance whose heartbeat is older than this is gone: its outbox claims are sent by
    # the others (a restart under the same INSTANCE_NAME takes them over at once).
    instance_timeout_seconds: float = Field(default=10.0, gt=0)
    # Stable name of this deployment slot (default: host name and webhook port, or "polling").
    instance_name: str | None = None
    # Transient send errors (429, 5xx, network) are retried until a message has been failing
    # this long; then it is listed as failed (`consultbot outbox failed`).
    outbox_max_age_hours: float = Field(default=48.0, gt=0)
    # Per-member flood control: sustained events per second, and the burst allowed on top.
    throttle_rate: float = Field(default=4.0, gt=0)
    throttle_burst: int = Field(default=15, ge=1)
    log_level: str = "INFO"

    @field_validator("admin_ids", mode="before")
    @classmethod
    def _split_ids(cls, value: object) -> object:
        if isinstance(value, str):
            parts = [p.strip() for p in value.replace(";", ",").split(",") if p.strip()]
            try:
                return frozenset(int(p) for p in parts)
            except ValueError:
                raise ValueError(
                    "ADMIN_IDS must be numeric Telegram user ids, comma-separated"
                ) from None
        if isinstance(value, int):
            return frozenset({value})
        return value

    @field_validator("telegram_api_url", "redis_url", "webhook_url", "instance_name", mode="before")
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    def token(self) -> str:
        """The bot token, or a ConfigError that says how to get one."""
        if self.bot_token is None or not self.bot_token.get_secret_value().strip():
            raise ConfigError(
                "BOT_TOKEN is not set: get a token from @BotFather in Telegram and put "
                "BOT_TOKEN=... in the environment or in a .env file (see .env.example)."
            )
        token = self.bot_token.get_secret_value().strip()
        if not TOKEN_PATTERN.match(token):
            raise ConfigError(
                "BOT_TOKEN does not look like a bot token (expected digits, a colon and about "
                "35 letters, e.g. 123456789:AA...): copy it again from @BotFather."
            )
        return token


def load_settings(**overrides: object) -> Settings:
    """Settings from environment/.env; a malformed value becomes a ConfigError."""
    try:
        return Settings(**overrides)  # type: ignore[arg-type]
    except ValidationError as exc:
        first = exc.errors()[0]
        name = str(first["loc"][0]).upper() if first["loc"] else "configuration"
        raise ConfigError(f"{name} is invalid: {first['msg']}") from None
