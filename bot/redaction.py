"""Secrets never printed: the bot token (in any URL or message) and the webhook secret."""

from __future__ import annotations

import logging
import re
from collections.abc import Iterable

# A bot token wherever it appears, e.g. inside .../bot123456:AA.../getMe of an error message.
TOKEN_LIKE = re.compile(r"\d{3,20}:[A-Za-z0-9_-]{30,64}")
HIDDEN = "<hidden>"


def redact(text: str, secrets: Iterable[str] = ()) -> str:
    for secret in sorted((s for s in secrets if s), key=len, reverse=True):
        text = text.replace(secret, HIDDEN)
    return TOKEN_LIKE.sub(HIDDEN, text)


class RedactingFormatter(logging.Formatter):
    """Formats as usual (traceback included), then hides the secrets in the result."""

    def __init__(self, fmt: str, secrets: Iterable[str] = ()) -> None:
        super().__init__(fmt)
        self.secrets = list(secrets)

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record), self.secrets)


def install(secrets: Iterable[str], fmt: str) -> None:
    """Every handler of the root logger redacts from now on."""
    formatter = RedactingFormatter(fmt, secrets)
    for handler in logging.getLogger().handlers:
        handler.setFormatter(formatter)
