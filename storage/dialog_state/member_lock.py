"""One update at a time per member, across every instance sharing Redis."""

from __future__ import annotations

import asyncio
import itertools
import logging
import secrets
from collections.abc import AsyncGenerator, Awaitable, Callable
from contextlib import asynccontextmanager
from dataclasses import replace
from typing import TYPE_CHECKING, Any

from aiogram.fsm.storage.base import BaseEventIsolation, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation

from storage.redis_pipelined import PipelinedRedis, Script

if TYPE_CHECKING:
    from redis.asyncio import Redis

log = logging.getLogger(__name__)

# A process killed mid-update leaves its lock behind: it lapses after seconds, not aiogram's
# default minute, so the member is not ignored that long after a restart. A live update keeps
# its lock however long it runs: held locks are renewed every third of this.
LOCK_SECONDS = 5.0
# How often a lock held by another instance is tried again (redis-py's default is 100 ms).
RETRY_SECONDS = 0.01

# Take the lock; once taken, read the member's dialog stack and the context on top of it
# (aiogram-dialog reads both next): one round trip instead of three. A stack that does not
# parse, or keys laid out otherwise, only means nothing is read ahead. Already ours counts as
# taken: a command sent again after a dropped connection may have run the first time.
_ACQUIRE = """
local holder = redis.call('GET', KEYS[1])
if holder and holder ~= ARGV[1] then return false end
redis.call('SET', KEYS[1], ARGV[1], 'PX', ARGV[2])
local stack = redis.call('GET', KEYS[2])
if not stack then return {1} end
local ok, parsed = pcall(cjson.decode, stack)
if ok and type(parsed) == 'table' and type(parsed.intents) == 'table'
    and #parsed.intents > 0 then
  local key = ARGV[3] .. tostring(parsed.intents[#parsed.intents]) .. ARGV[4]
  return {1, stack, key, redis.call('GET', key)}
end
return {1, stack}
"""
# If the lock is still ours, write what the update kept (an empty value deletes the key) and
# let the lock go. A lost lock writes nothing: another instance may have written newer state.
_RELEASE = """
if redis.call('GET', KEYS[1]) ~= ARGV[1] then return 0 end
for i = 2, #KEYS do
  if ARGV[i] == '' then redis.call('DEL', KEYS[i]) else redis.call('SET', KEYS[i], ARGV[i]) end
end
return redis.call('DEL', KEYS[1])
"""
# Extend every lock still ours (KEYS[i] holds ARGV[i + 1]); return the positions of the lost.
_RENEW = """
local lost = {}
for i = 1, #KEYS do
  if redis.call('GET', KEYS[i]) == ARGV[i + 1] then
    redis.call('PEXPIRE', KEYS[i], ARGV[1])
  else
    lost[#lost + 1] = i
  end
end
return lost
"""
STACK_DESTINY = "aiogd:stack:"
CONTEXT_DESTINY = "aiogd:context:"


class SharedMemberLock(BaseEventIsolation):
    """A member's next tap usually arrives while the previous update is finishing. Within
    this process it waits on an asyncio lock, woken the moment the first is done; only the
    update at the head of the queue takes the Redis lock, which keeps other instances out
    and is polled every few milliseconds only while one of them holds it.

    With `storage` (the Redis dialog storage, storage/dialog_state/redis_storage.py) the lock reads the
    member's dialog stack and context in the same round trip and hands them over.

    The scripts go through one pipelined connection (storage/redis_pipelined.py): every tap
    sends two, and redis-py's command path was most of their cost. `redis` (redis-py) names
    the server and serves the tests' and tools' own commands."""

    def __init__(
        self,
        redis: Redis,
        key_builder: DefaultKeyBuilder | None = None,
        storage: Any = None,
    ) -> None:
        self.redis = redis
        self.key_builder = key_builder or DefaultKeyBuilder()
        self.local = SimpleEventIsolation()
        self.storage = storage
        self.fast = PipelinedRedis.like(redis)
        if storage is not None:
            storage.fast = self.fast
        self.acquire = self._script(_ACQUIRE)
        self.release = self._script(_RELEASE)
        self.renew = self._script(_RENEW)
        # Locks this process holds (name -> token): one task renews them all, so a slow
        # update costs no task of its own.
        self.held: dict[str, str] = {}
        self.renewer: asyncio.Task[None] | None = None

    def _script(self, body: str) -> Callable[..., Awaitable[Any]]:
        script = Script(body)

        async def run(keys: list[Any], args: list[Any]) -> Any:
            return await self.fast.run(script, keys, args)

        return run

    async def _renew_held(self) -> None:
        while self.held:
            await asyncio.sleep(LOCK_SECONDS / 3)
            held = list(self.held.items())
            if not held:
                break
            try:
                lost = await self.renew(
                    keys=[name for name, _ in held],
                    args=[int(LOCK_SECONDS * 1000), *(token for _, token in held)],
                )
            except Exception:  # Redis away: the release will find out whether it lapsed
                log.warning("member locks could not be renewed", exc_info=True)
                continue
            for position in lost:
                log.warning("member lock %s was lost while its update ran", held[position - 1][0])
        self.renewer = None

    def _hold(self, name: str, token: str) -> None:
        self.held[name] = token
        if self.renewer is None:
            self.renewer = asyncio.create_task(self._renew_held())

    def _dialog_keys(self, key: StorageKey) -> tuple[str, str, str]:
        """(stack key, context key's prefix and suffix) as the storage names them, or empty
        strings without a storage. aiogram-dialog keys a private chat's stack by the chat."""
        if self.storage is None:
            return "", "", ""
        build = self.storage.key_builder.build
        dialog = replace(key, user_id=key.chat_id)
        marker = "\x00"
        context = build(replace(dialog, destiny=CONTEXT_DESTINY + marker), "data")
        prefix, _, suffix = context.partition(marker)
        return build(replace(dialog, destiny=STACK_DESTINY), "data"), prefix, suffix

    async def _take(self, keys: list[str], args: list[Any]) -> Any:
        """Poll until the lock is ours: another instance holding it sends no signal."""
        for _attempt in itertools.count():
            taken = await self.acquire(keys=keys, args=args)
            if taken is not None:
                return taken
            await asyncio.sleep(RETRY_SECONDS)
        return None  # unreachable

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        async with self.local.lock(key):
            name = self.key_builder.build(key, "lock")
            token = secrets.token_hex(8)
            stack_key, prefix, suffix = self._dialog_keys(key)
            keys = [name, stack_key or name]
            args = [token, int(LOCK_SECONDS * 1000), prefix, suffix]
            taken = await self._take(keys, args)
            self._hold(name, token)
            if stack_key:
                read = {stack_key: taken[1] if len(taken) > 1 else None}
                if len(taken) > 2:
                    context_key = taken[2].decode() if isinstance(taken[2], bytes) else taken[2]
                    read[context_key] = taken[3] if len(taken) > 3 else None
                self.storage.begin_turn(stack_key[: stack_key.index(STACK_DESTINY)], read)
            try:
                yield
            finally:
                self.held.pop(name, None)
                kept = self.storage.end_turn() if stack_key else {}
                released = await self.release(
                    keys=[name, *kept], args=[token, *(v or "" for v in kept.values())]
                )
                if not released:
                    # Lost (not renewed in time): another instance may have it and newer
                    # state by now, so this update's dialog writes were dropped.
                    log.warning(
                        "member lock %s was lost before the update ended: its dialog writes "
                        "were dropped",
                        key.user_id,
                    )

    async def open(self) -> None:
        """Connect ahead of the first crowd: every update takes and releases its lock here."""
        await self.fast.open()

    async def close(self) -> None:
        if self.renewer is not None:
            self.renewer.cancel()
        await self.local.close()
        await self.fast.close()
        await self.redis.aclose(close_connection_pool=True)
