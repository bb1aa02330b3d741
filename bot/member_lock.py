"""One update at a time per member, across every instance sharing Redis."""

from __future__ import annotations

import logging
from collections.abc import AsyncGenerator
from contextlib import asynccontextmanager

from aiogram.fsm.storage.base import BaseEventIsolation, DefaultKeyBuilder, StorageKey
from aiogram.fsm.storage.memory import SimpleEventIsolation
from redis.asyncio import Redis
from redis.exceptions import LockError

log = logging.getLogger(__name__)

# A process killed mid-update leaves its lock behind: it lapses after seconds, not aiogram's
# default minute, so the member is not ignored that long after a restart.
LOCK_SECONDS = 5.0
# How often a lock held by another instance is tried again (redis-py's default is 100 ms).
RETRY_SECONDS = 0.01


class SharedMemberLock(BaseEventIsolation):
    """A member's next tap usually arrives while the previous update is finishing. Within
    this process it waits on an asyncio lock, woken the moment the first is done; only the
    update at the head of the queue takes the Redis lock, which keeps other instances out
    and is polled every few milliseconds only while one of them holds it."""

    def __init__(self, redis: Redis, key_builder: DefaultKeyBuilder | None = None) -> None:
        self.redis = redis
        self.key_builder = key_builder or DefaultKeyBuilder()
        self.local = SimpleEventIsolation()

    @asynccontextmanager
    async def lock(self, key: StorageKey) -> AsyncGenerator[None, None]:
        async with self.local.lock(key):
            lock = self.redis.lock(
                self.key_builder.build(key, "lock"), timeout=LOCK_SECONDS, sleep=RETRY_SECONDS
            )
            await lock.acquire()
            try:
                yield
            finally:
                try:
                    await lock.release()
                except LockError:
                    # It lapsed during a long update: another instance may have it by now.
                    log.warning("member lock %s lapsed before the update ended", key.user_id)

    async def close(self) -> None:
        await self.local.close()
        await self.redis.aclose(close_connection_pool=True)
