"""The ideas' rules, without a database: limits, ids from buttons and links, quotas, the
outcome of a moderator's decision, an idea's link."""

from __future__ import annotations

import hashlib
import hmac
from dataclasses import dataclass
from datetime import timedelta
from enum import StrEnum

from bot.context import AppContext
from storage.models import Idea

TITLE_MAX = 100
TEXT_MAX = 2000
COMMENT_MAX = 1000
IDEA_PAYLOAD = "idea_"
# Ids are 32-bit integers in the database: anything else in a button or a link is forged.
MAX_ID = 2**31 - 1


def parse_id(value: object) -> int | None:
    """A database id from a button or a link: ASCII digits only, in range; else None."""
    text = str(value)
    if not text.isascii() or not text.isdigit() or len(text) > 10:
        return None
    number = int(text)
    return number if 0 < number <= MAX_ID else None


class Quota(StrEnum):
    IDEAS = "ideas"
    COMMENTS = "comments"
    REPORTS = "reports"


QUOTA_WINDOWS = {
    Quota.IDEAS: timedelta(days=1),
    Quota.COMMENTS: timedelta(hours=1),
    Quota.REPORTS: timedelta(days=1),
}


def quota_actor(app: AppContext, member_id: int) -> str:
    """Who a quota event belongs to: a keyed hash (HMAC-SHA-256) of the Telegram id. Quotas
    must outlive /forget (or erasing and coming back resets them), so they cannot hang on
    the member's row; the hash holds no name and no content, and each event is deleted once
    older than the longest window (a day). Keyed with a secret kept out of the database (the
    bot token): a copy of the database alone cannot tell whose events they are by hashing
    every possible id. A new token starts the counts afresh, once."""
    token = app.settings.bot_token
    secret = token.get_secret_value() if token is not None else ""
    key = hashlib.sha256(f"consultbot quota actor\0{secret}".encode()).digest()
    return hmac.new(key, str(member_id).encode(), hashlib.sha256).hexdigest()


class TextProblem(StrEnum):
    EMPTY = "empty"
    TOO_LONG = "too_long"


def check_text(value: str | None, limit: int) -> TextProblem | None:
    text = (value or "").strip()
    if not text:
        return TextProblem.EMPTY
    if len(text) > limit:
        return TextProblem.TOO_LONG
    return None


class Decision(StrEnum):
    DONE = "done"
    ALREADY = "already"
    MISSING = "missing"


@dataclass(frozen=True)
class DecisionResult:
    outcome: Decision
    idea: Idea | None


def idea_link(app: AppContext, idea_id: int) -> str:
    return f"https://t.me/{app.bot_username}?start={IDEA_PAYLOAD}{idea_id}"
