"""This process among the bot's instances: a token, a heartbeat, and what happens to the
outbox claims of an instance that is gone (restarted under the same name, or silent)."""

from __future__ import annotations

import asyncio
import logging
import os
import secrets
import socket
from collections.abc import Callable
from datetime import timedelta

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.context import Clock, system_clock
from storage.repositories.instances import InstanceRepository
from storage.repositories.outbox import OutboxRepository

log = logging.getLogger(__name__)


def instance_name(settings: Settings) -> str:
    """Stable across restarts of one deployment slot and unique among live processes: two
    processes cannot listen on one port of one host (and only one may poll)."""
    if settings.instance_name:
        return settings.instance_name
    slot = settings.webhook_listen if settings.webhook_url else "polling"
    return f"{socket.gethostname()}:{slot}"


class Instance:
    """Registers this process, beats every `timeout / 4`, and re-queues orphaned claims."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        name: str | None = None,
        timeout: timedelta = timedelta(seconds=10),
        clock: Clock = system_clock,
    ) -> None:
        self.sessionmaker = sessionmaker
        self.token = secrets.token_hex(8)
        self.name = name or f"{socket.gethostname()}:{os.getpid()}:{self.token}"
        self.timeout = timeout
        self.clock = clock
        self.registered = False

    @property
    def beat_every(self) -> float:
        return self.timeout.total_seconds() / 4

    async def register(self) -> int:
        """Join; a predecessor of the same name is gone: its claims are re-queued now."""
        now = self.clock()
        async with self.sessionmaker() as session:
            replaced = await InstanceRepository(session).register(
                self.token, self.name, system_clock()
            )
            released = await OutboxRepository(session).release_orphans(now - self.timeout)
            await session.commit()
        self.registered = True
        if replaced:
            log.info("instance %s replaces %s (a restart)", self.name, ", ".join(replaced))
        if released:
            log.warning("outbox: %d deliveries interrupted by a crash are queued again", released)
        return released

    async def beat(self, own: Callable[[], set[int]] = set) -> int:
        """Heartbeat, then re-queue the claims of instances gone silent and our own lost ones.
        Returns how many deliveries went back to the queue."""
        # Liveness is wall-clock time ("spoke within the timeout"), whatever the bot's clock
        # (a test may move it, FileClock): claims' ages are on the bot's clock, as they were
        # written.
        now, wall = self.clock(), system_clock()
        async with self.sessionmaker() as session:
            instances = InstanceRepository(session)
            if not await instances.beat(self.token, self.name, wall):
                log.warning(
                    "instance %s was taken for gone (no heartbeat): registered again", self.name
                )
            dead = await instances.forget_dead(wall - self.timeout)
            outbox = OutboxRepository(session)
            released = await outbox.release_orphans(now - self.timeout)
            released += await outbox.release_lost(self.token, own(), now - self.timeout)
            await session.commit()
        if dead:
            log.warning("instances gone silent: %s", ", ".join(dead))
        if released:
            log.warning("outbox: %d deliveries interrupted by a crash are queued again", released)
        return released

    async def keep_alive(self, own: Callable[[], set[int]], on_release: Callable[[], None]) -> None:
        while True:
            await asyncio.sleep(self.beat_every)
            try:
                if await self.beat(own):
                    on_release()
            except asyncio.CancelledError:
                raise
            except Exception:  # the database went away: beat again later
                log.exception("instance heartbeat failed")

    async def retire(self) -> None:
        """Clean shutdown: our unsent claims go back to the queue, and we leave."""
        async with self.sessionmaker() as session:
            await OutboxRepository(session).release_owner(self.token)
            await InstanceRepository(session).retire(self.token)
            await session.commit()
        self.registered = False
