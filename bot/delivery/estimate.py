"""How long a broadcast takes, and what Telegram's paid broadcasts would cost, before sending.

Telegram's figures (../shared/telegram-bot-api/api.json, Bot API 10.1): `allow_paid_broadcast`
on sendMessage, sendPhoto, sendMediaGroup … "Pass True to allow up to 1000 messages per second,
ignoring broadcasting limits for a fee of 0.1 Telegram Stars per message"; what is billed is
"the number of successful requests that exceeded regular limits" (TransactionPartnerTelegramApi.
request_count). The regular limit is about 30 messages per second (the Bot FAQ)."""

from __future__ import annotations

from dataclasses import dataclass

from bot.delivery.ratelimit import SendLimits

FREE_PER_SECOND = 30.0  # Telegram's broadcasting limit, free of charge
PAID_PER_SECOND = 1000.0  # with allow_paid_broadcast
STARS_PER_PAID_MESSAGE = 0.1


@dataclass(frozen=True)
class Estimate:
    messages: int  # as Telegram counts them (each photo of an album)
    ahead: int  # messages already waiting in the outbox, sent first
    rate: float  # messages per second the outbox keeps to
    seconds: float  # until the last of them has gone
    stars: float | None  # paid broadcasts: the estimated cost; None when they are off
    stars_at_most: float | None  # ... and if every message were billed


def estimate(messages: int, limits: SendLimits, ahead: int = 0, per_chat: int = 1) -> Estimate:
    """`per_chat`: the most messages one chat gets; a chat takes them at 1/s whatever the
    overall rate, so a small broadcast of albums still takes that long."""
    rate = limits.per_second / (1.0 + limits.margin)
    seconds = max((ahead + messages) / rate, (per_chat - 1) * limits.private_interval)
    stars = at_most = None
    if limits.paid:
        # Billed: what goes beyond the free 30 in each second of this broadcast's own sending.
        own = messages / rate
        billed = (
            max(0.0, messages - FREE_PER_SECOND * max(1.0, own)) if rate > FREE_PER_SECOND else 0.0
        )
        stars = round(billed * STARS_PER_PAID_MESSAGE, 1)
        at_most = round(messages * STARS_PER_PAID_MESSAGE, 1)
    return Estimate(messages, ahead, limits.per_second, seconds, stars, at_most)


def seconds_left(ahead: int, per_chat: int, limits: SendLimits, retry_in: float = 0.0) -> float:
    """Until a broadcast's last message has gone: what is queued up to it at the rate, a chat's
    own messages at 1/s, and its latest retry."""
    rate = limits.per_second / (1.0 + limits.margin)
    return max(ahead / rate, (per_chat - 1) * limits.private_interval, retry_in, 0.0)
