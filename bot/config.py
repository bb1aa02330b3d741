"""Settings read from the environment or a `.env` file (see README: Configuration)."""

from __future__ import annotations

import re
from pathlib import Path
from typing import Annotated
from urllib.parse import urlsplit

from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, NoDecode, SettingsConfigDict

DEFAULT_DATABASE_URL = "sqlite+aiosqlite:///data/consultbot.db"
TOKEN_PATTERN = re.compile(r"^\d{3,20}:[A-Za-z0-9_-]{30,64}$")
# What Telegram accepts as a webhook secret_token, at least 16 long: a short one is guessed
# by whoever finds the URL, who could then post updates as any member.
WEBHOOK_SECRET_MIN = 16
WEBHOOK_SECRET_PATTERN = re.compile(r"^[A-Za-z0-9_-]{1,256}$")


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
    # The language of the moderation group's cards; empty: the consultation's first language.
    moderation_language: str | None = None
    webhook_url: str | None = None
    webhook_secret: SecretStr | None = None
    webhook_listen: str = "127.0.0.1:8080"
    # Telegram allows about 30 messages/s overall; keep a margin by default.
    broadcast_rate: float = Field(default=25.0, gt=0)
    # Telegram's paid broadcasts (allow_paid_broadcast: up to 1000 messages/s, 0.1 Star per
    # message beyond the free ~30/s, from the bot's Stars balance): off unless set; when on,
    # the outbox keeps to PAID_BROADCAST_RATE instead of BROADCAST_RATE.
    paid_broadcast: bool = False
    paid_broadcast_rate: float = Field(default=900.0, gt=0, le=1000)
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
    throttle_burst: int = Field(default=8, ge=1)
    # A button press still unanswered after this many seconds gets an empty answer, so the
    # member's client stops spinning (a late alert of the handler is then dropped). Handlers
    # answer after the screen changes; an earlier answer stops the spinner on the old screen
    # and people tap again. Telegram refuses an answer some 15 s after the tap: 10 s leaves
    # room for the wait in getUpdates and the answer's own trip.
    callback_answer_deadline: float = Field(default=10.0, gt=0)
    # Updates doing work at once (each holds database connections), and updates accepted
    # and waiting (for their member's previous one, or for a slot), in polling and webhook mode.
    update_concurrency: int = Field(default=32, ge=1)
    updates_in_flight: int = Field(default=1000, ge=1)
    # On SIGTERM/SIGINT: how long the updates already accepted may take to finish before the
    # process leaves (keep it under compose's stop_grace_period and systemd's TimeoutStopSec).
    shutdown_timeout_seconds: float = Field(default=20.0, gt=0)
    # PostgreSQL: the connections this instance may open, all its pools together (README:
    # Deployment gives the sum for N instances), and how long an update waits for a free one
    # before it gives up with a logged error (never a hang).
    database_max_connections: int = Field(default=40, ge=8)
    database_pool_timeout: float = Field(default=10.0, gt=0)
    log_level: str = "INFO"
    # For tests and demonstrations only: the bot's "now" is the wall clock moved by the number
    # of seconds written in this file, re-read on SIGUSR1 (phases then catch up at once).
    clock_file: Path | None = None
    # Per-member quotas (0 = no limit); organisers are not limited.
    quota_ideas_per_day: int = Field(default=5, ge=0)
    quota_comments_per_hour: int = Field(default=20, ge=0)
    quota_reports_per_day: int = Field(default=10, ge=0)
    # New comments reach the moderation group in one card per this many seconds at most.
    comment_cards_every: float = Field(default=60.0, gt=0)

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

    @field_validator(
        "telegram_api_url",
        "redis_url",
        "webhook_url",
        "webhook_secret",
        "moderation_language",
        "instance_name",
        mode="before",
    )
    @classmethod
    def _empty_is_none(cls, value: object) -> object:
        return None if value == "" else value

    @field_validator("telegram_api_url")
    @classmethod
    def _api_url(cls, value: str | None) -> str | None:
        # A malformed URL would reach the HTTP client, whose error quotes the whole request
        # URL, token included: refuse it here, without repeating it.
        if value is None:
            return None
        parts = urlsplit(value)
        if (
            parts.scheme not in ("http", "https")
            or not parts.hostname
            or parts.query
            or parts.fragment
            or not re.fullmatch(r"[A-Za-z0-9.\-\[\]:]+", parts.netloc.rpartition("@")[2])
            or re.search(r"\s", value)
        ):
            raise ValueError(
                "must be an http(s) base URL such as http://127.0.0.1:8081 "
                "(the bot adds /bot<token>/<method> itself)"
            )
        try:
            parts.port  # noqa: B018 (raises on a malformed port)
        except ValueError:
            raise ValueError("has a malformed port") from None
        return value

    @model_validator(mode="after")
    def _webhook_needs_secret(self) -> Settings:
        if self.webhook_url is None:
            return self
        secret = self.webhook_secret.get_secret_value() if self.webhook_secret else ""
        if not secret:
            raise ValueError(
                "WEBHOOK_URL is set without WEBHOOK_SECRET: anyone who finds the URL could "
                "post updates as any user. Set WEBHOOK_SECRET (16-256 of A-Z a-z 0-9 _ -)."
            )
        if not WEBHOOK_SECRET_PATTERN.match(secret):
            raise ValueError(
                "WEBHOOK_SECRET may only hold 1-256 of A-Z a-z 0-9 _ - (Telegram's rule)"
            )
        if len(secret) < WEBHOOK_SECRET_MIN:
            raise ValueError(
                f"WEBHOOK_SECRET is too short ({len(secret)} characters): use at least "
                f"{WEBHOOK_SECRET_MIN}, e.g. from `openssl rand -hex 16`"
            )
        return self

    def secrets(self) -> list[str]:
        """Values that must never appear in a printed message."""
        values = [self.bot_token, self.webhook_secret]
        return [v.get_secret_value() for v in values if v and v.get_secret_value().strip()]

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
        message = str(first["msg"]).removeprefix("Value error, ")
        if not first["loc"]:  # a rule across settings: its message names them
            raise ConfigError(message) from None
        raise ConfigError(f"{str(first['loc'][0]).upper()} is invalid: {message}") from None
