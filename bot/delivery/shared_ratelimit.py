"""The overall send rate shared by every instance through Redis (REDIS_URL): each send takes
the next free slot from one atomic script, on Redis's clock. Without Redis, each process paces
itself alone (bot/delivery/ratelimit.py), which is right only for a single instance."""

from __future__ import annotations

import logging
from dataclasses import dataclass
from typing import Any

from bot.delivery.ratelimit import FLOOD_CHATS, FLOOD_SPAN, SendLimits

log = logging.getLogger(__name__)

# KEYS: next free overall slot, the chat's next free instant, paused-until (after a 429).
# ARGV: overall gap, what the chat pays back for this send, key lifetime (ms), weight (the
# messages Telegram counts: an album's photos). An album takes `weight` consecutive slots and
# leaves at the last one (see RateLimiter.overall_delay).
# Returns {granted (1/0), seconds to wait}: when the chat is not ready nothing is reserved.
_RESERVE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local chat_ready = tonumber(redis.call('GET', KEYS[2]) or '0')
if chat_ready > now then
  return {0, tostring(chat_ready - now)}
end
local gap = tonumber(ARGV[1])
local at = math.max(now,
                    tonumber(redis.call('GET', KEYS[1]) or '0') + (tonumber(ARGV[4]) - 1) * gap,
                    tonumber(redis.call('GET', KEYS[3]) or '0'))
redis.call('SET', KEYS[1], tostring(at + gap), 'PX', ARGV[3])
redis.call('SET', KEYS[2], tostring(at + tonumber(ARGV[2])), 'PX', ARGV[3])
return {1, tostring(at - now)}
"""
_PAUSE = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local until_ = math.max(now + tonumber(ARGV[1]), tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], tostring(until_), 'PX', math.ceil(tonumber(ARGV[1]) * 1000) + 1000)
return tostring(until_ - now)
"""

# A 429 on one chat (see RateLimiter.flood), told by any instance. KEYS: the chat's next free
# instant, the recent 429s (a sorted set: "chat:retry_after:at" by when), paused-until.
# ARGV: chat id, retry_after, FLOOD_SPAN, FLOOD_CHATS. The chat waits retry_after on every
# instance; 429s from FLOOD_CHATS distinct chats within their retry_after + FLOOD_SPAN pause
# everything for the largest retry_after. Returns that pause, or 0.
_FLOOD = """
local t = redis.call('TIME')
local now = tonumber(t[1]) + tonumber(t[2]) / 1000000
local wait = tonumber(ARGV[2])
local ready = math.max(now + wait, tonumber(redis.call('GET', KEYS[1]) or '0'))
redis.call('SET', KEYS[1], tostring(ready), 'PX', math.ceil((ready - now) * 1000) + 1000)
redis.call('ZADD', KEYS[2], now, ARGV[1] .. ':' .. ARGV[2] .. ':' .. tostring(now))
redis.call('ZREMRANGEBYSCORE', KEYS[2], '-inf', now - 3600)
redis.call('PEXPIRE', KEYS[2], 3600000)
local chats, n, longest = {}, 0, 0
for _, member in ipairs(redis.call('ZRANGEBYSCORE', KEYS[2], now - 3600, '+inf')) do
  local chat, seconds, at = string.match(member, '^(.-):(.-):(.-)$')
  seconds, at = tonumber(seconds), tonumber(at)
  if at + seconds + tonumber(ARGV[3]) >= now then
    if not chats[chat] then
      chats[chat] = true
      n = n + 1
    end
    longest = math.max(longest, seconds)
  end
end
if n < tonumber(ARGV[4]) then
  return '0'
end
local until_ = math.max(now + longest, tonumber(redis.call('GET', KEYS[3]) or '0'))
redis.call('SET', KEYS[3], tostring(until_), 'PX', math.ceil(longest * 1000) + 1000)
return tostring(longest)
"""


@dataclass(frozen=True)
class Grant:
    granted: bool  # False: the chat is not ready (another instance sent to it); nothing reserved
    wait: float  # seconds until the slot (granted) or until the chat is ready (not granted)


class SharedRateLimit:
    def __init__(self, redis: Any, limits: SendLimits, prefix: str) -> None:
        self.redis = redis
        self.limits = limits
        self.prefix = prefix
        self.reserve_script = redis.register_script(_RESERVE)
        self.pause_script = redis.register_script(_PAUSE)
        self.flood_script = redis.register_script(_FLOOD)
        self.broken = False

    @classmethod
    def from_url(cls, url: str, limits: SendLimits, bot_id: str) -> SharedRateLimit:
        from storage.redis_pool import redis_client

        return cls(redis_client(url), limits, f"consultbot:{bot_id}:rate")

    async def reserve(self, chat_id: int, is_group: bool, weight: int = 1) -> Grant:
        margin = self.limits.margin
        gap = (1.0 + margin) / self.limits.per_second
        if is_group:  # 20 per minute, spread out: one every 3 s
            payback = weight * 60.0 / self.limits.group_per_minute + margin
        else:
            payback = weight * self.limits.private_interval + margin
        try:
            granted, wait = await self.reserve_script(
                keys=[
                    f"{self.prefix}:next",
                    f"{self.prefix}:chat:{chat_id}",
                    f"{self.prefix}:pause",
                ],
                args=[repr(gap), repr(payback), 120_000, weight],
            )
        except Exception as exc:  # Redis down: each instance paces itself meanwhile
            self._warn(exc)
            return Grant(True, 0.0)
        self.broken = False
        return Grant(bool(int(granted)), max(0.0, float(wait)))

    async def flood(self, chat_id: int, retry_after: float) -> float:
        """A 429 on this chat, seen by one instance: the chat waits on every instance.
        Returns the overall pause when several chats' 429s say the overall limit is hit."""
        try:
            seconds = await self.flood_script(
                keys=[
                    f"{self.prefix}:chat:{chat_id}",
                    f"{self.prefix}:floods",
                    f"{self.prefix}:pause",
                ],
                args=[chat_id, repr(float(retry_after)), repr(FLOOD_SPAN), FLOOD_CHATS],
            )
        except Exception as exc:
            self._warn(exc)
            return 0.0
        return float(seconds)

    async def pause(self, seconds: float) -> None:
        """The overall limit is hit: every instance holds back."""
        try:
            await self.pause_script(keys=[f"{self.prefix}:pause"], args=[repr(float(seconds))])
        except Exception as exc:
            self._warn(exc)

    def _warn(self, exc: Exception) -> None:
        if not self.broken:
            log.warning("shared rate limit unavailable (%s): pacing this instance alone", exc)
        self.broken = True

    async def close(self) -> None:
        await self.redis.aclose(close_connection_pool=True)
