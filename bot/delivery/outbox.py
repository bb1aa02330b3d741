"""The durable outbox sender: Telegram's rate limits, retries, blocked users, crash resume."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import logging
import time
from collections.abc import Callable
from datetime import datetime, timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.context import Clock, system_clock
from bot.delivery.doorbell import OutboxDoorbell
from bot.delivery.instances import Instance
from bot.delivery.media import MediaSender
from bot.delivery.ratelimit import RateLimiter, SendLimits
from bot.delivery.shared_ratelimit import SharedRateLimit
from bot.organisers.alerts import AdminAlerts
from storage.models import Delivery
from storage.repositories.chats import ChatRepository
from storage.repositories.members import MemberRepository
from storage.repositories.outbox import OutboxRepository, backoff

log = logging.getLogger(__name__)
CLAIM_SECONDS = 2.0  # a claim holds about this much sending at the rate: little to re-queue
# A chat still paying back (an album: seven seconds) for longer than this is left out of the
# next claim: its message would hold the batch, and every other chat behind it.
BUSY_HORIZON = 0.25
# A delivery whose chat another instance made wait longer than this goes back to the queue.
POSTPONE_AFTER = 1.0
# After a restart, what went out this long ago may still be paid back by its chat.
REMEMBER_SENDS = timedelta(seconds=15)
LEGACY_STALE = timedelta(minutes=2)  # claims without an owner (made before owners existed)
# The next claim is made while the last messages of the current one are sent (this share of
# it left): the sender does not stand still for the query.
PREFETCH_AT = 0.25
# Requests on their way at most: a quarter of a second's worth at the rate (at least 16, at
# most 64, under aiohttp's 100 connections). A machine that stalls for a moment delays the
# answers; with too few, the sender would then wait for a free one and fall behind its slots.
IN_FLIGHT_SECONDS = 0.25
UPLOAD_POLL = 0.02  # seconds between two looks at an upload in progress
FLUSH_EVERY = 0.02  # seconds between two writes of the 'sent' results


class Outbox:
    """Delivers what the outbox table holds; one task per process, safe with several processes.

    Claims are small and owned by this process's instance token; the instance's heartbeat
    re-queues the claims of instances that are gone (see bot/delivery/instances.py). Transient errors
    (429, 5xx, network) are retried with a back-off capped at 5 minutes until the message has
    failed for `max_age`; other errors fail at once and are listed for organisers."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bot: Bot,
        limits: SendLimits,
        clock: Clock = system_clock,
        monotonic: Callable[[], float] = time.monotonic,
        batch: int | None = None,
        concurrency: int | None = None,
        on_sent: Callable[[Delivery, Message], object] | None = None,
        instance: Instance | None = None,
        max_age: timedelta = timedelta(hours=48),
        alerts: AdminAlerts | None = None,
        shared: SharedRateLimit | None = None,
        on_photo_uploaded: Callable[[bytes, str], None] | None = None,
        doorbell: OutboxDoorbell | None = None,
    ) -> None:
        self.sent_buffer: list[tuple[int, datetime, int]] = []  # id, sent at, message id
        self.sessionmaker = sessionmaker
        self.bot = bot
        self.clock = clock
        self.limiter = RateLimiter(limits, monotonic)
        self.monotonic = monotonic
        # The messages (as Telegram counts them) a claim holds; rows are claimed by their
        # recent mean weight, so a batch of albums is not seven times as long.
        self.batch = batch or max(1, int(limits.per_second * CLAIM_SECONDS))
        self.mean_weight = 1.0
        self.slots = asyncio.Semaphore(
            concurrency or min(64, max(16, int(limits.per_second * IN_FLIGHT_SECONDS)))
        )
        self.prefetch: asyncio.Task[list[Delivery]] | None = None
        # Rung by whoever queued deliveries (bot/app.py hands the same one to the services).
        self.doorbell = doorbell or OutboxDoorbell()
        self.in_flight: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        # Told (bytes, file_id) when an album photo was uploaded: /results reuses it.
        self.media = MediaSender(sessionmaker, bot, self.limiter, limits.paid, on_photo_uploaded)
        self.on_sent = on_sent
        self.instance = instance or Instance(sessionmaker, clock=clock)
        self.owned: set[int] = set()  # deliveries claimed and not yet settled in the database
        self.max_age = max_age
        self.alerts = alerts
        self.shared = shared
        self.not_before: dict[int, float] = {}  # delivery id -> monotonic (shared chat limit)

    def wake(self) -> None:
        """Called after a commit that queued deliveries, so they leave at once."""
        self.doorbell.ring()

    async def _flush_sent(self) -> None:
        """Write the buffered 'sent' results in one transaction; keep them on failure."""
        if not self.sent_buffer:
            return
        batch, self.sent_buffer = self.sent_buffer, []
        try:
            async with self.sessionmaker() as session:
                await OutboxRepository(session).settle_sent(batch)
                await session.commit()
        except Exception:
            log.exception("outbox: recording %d sent messages failed; will retry", len(batch))
            self.sent_buffer[:0] = batch
            return
        self.owned.difference_update(delivery_id for delivery_id, _, _ in batch)
        self.doorbell.ring()  # those chats' next messages may now be claimed

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self._flush_sent()

    async def run(self) -> None:
        # Joining re-queues what a predecessor of this instance (a crash) had claimed.
        while not self.instance.registered:
            try:
                await self.instance.register()
            except Exception:
                log.exception("outbox: cannot register this instance; retrying in a second")
                await asyncio.sleep(1)
        await self._remember_recent_sends()
        flusher = asyncio.create_task(self._flush_loop(), name="outbox-flush")
        heart = asyncio.create_task(
            self.instance.keep_alive(lambda: set(self.owned), self.wake), name="heartbeat"
        )
        try:
            while True:
                try:
                    if not await self.pump():
                        await self._idle()
                except asyncio.CancelledError:
                    raise
                except Exception:  # e.g. the database went away: keep trying, never die
                    log.exception("outbox: sender loop failed; retrying in a second")
                    await asyncio.sleep(1)
        finally:
            if self.prefetch is not None:  # its rows are owned: retire() queues them again
                self.prefetch.cancel()
                await asyncio.gather(self.prefetch, return_exceptions=True)
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            for task in (flusher, heart):
                task.cancel()
            await asyncio.gather(flusher, heart, return_exceptions=True)
            await self._flush_sent()
            with contextlib.suppress(Exception):
                await self.instance.retire()

    async def _remember_recent_sends(self) -> None:
        """A predecessor (a crash, a restart) sent to chats a moment ago: they pay it back
        before this process sends there. What it had in flight counts as sent just now."""
        try:
            now = self.clock()
            async with self.sessionmaker() as session:
                recent = await OutboxRepository(session).recent_sends(now - REMEMBER_SENDS)
        except Exception:
            log.exception("outbox: cannot read the recent sends; pacing from scratch")
            return
        mono = self.monotonic()
        for send in recent:
            ago = (now - send.sent_at).total_seconds() if send.sent_at else 0.0
            self.limiter.recall(send.chat_id, send.is_group, send.weight, mono - max(0.0, ago))

    async def _idle(self) -> None:
        async with self.sessionmaker() as session:
            due = await OutboxRepository(session).next_due()
        timeout = 1.0
        busy = self.limiter.busy_chats(BUSY_HORIZON)
        if busy:  # what is due may be theirs: look again when the first has paid back
            timeout = min(timeout, max(0.05, min(busy.values()) - BUSY_HORIZON))
        elif due is not None:
            timeout = min(timeout, max(0.05, (due - self.clock()).total_seconds()))
        await self.doorbell.wait(timeout)
        # Python 3.11's wait_for loses a cancellation that arrives as the event is set: the
        # sender then ran on forever after shutdown asked it to stop.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    async def pump(self) -> bool:
        """Claim one small batch of due deliveries and send it, respecting the limits: the
        oldest message of each chat that is not paying back, so that the others' messages fill
        the overall budget while a chat waits out its album."""
        rows: list[Delivery] = []
        if self.prefetch is not None:
            prefetch, self.prefetch = self.prefetch, None
            rows = await prefetch
        if not rows:  # none, or an empty prefetch: chats may have paid back since
            rows = await self._claim()
        if not rows:
            return False
        # By when the chat is ready, then by age: the sender commits to the head and waits for
        # its overall slot; nothing behind it takes that slot meanwhile.
        queue: list[tuple[float, int, Delivery]] = []
        for row in rows:
            heapq.heappush(queue, (self._delay(row), row.id, row))
        prefetch_at = int(len(rows) * PREFETCH_AT)
        while queue:
            if self.prefetch is None and len(queue) <= prefetch_at:
                self.prefetch = asyncio.create_task(self._claim())
            _, _, row = heapq.heappop(queue)
            wait = self._delay(row)
            if wait > 0:
                if queue and queue[0][0] < wait:
                    heapq.heappush(queue, (wait, row.id, row))
                    continue
                await asyncio.sleep(wait)
                if (again := self._delay(row)) > 0:
                    heapq.heappush(queue, (again, row.id, row))
                    continue
            # A free request first, so that the overall slot is not missed waiting for one.
            await self.slots.acquire()
            # Its overall slot: a 429 meanwhile may push it back, and sends still on their way
            # hold theirs until a second after their answer (however long that takes).
            while True:
                if (overall := self.limiter.overall_delay(self.monotonic(), row.weight)) <= 0:
                    break
                await asyncio.sleep(overall)
            if self.shared is not None:
                grant = await self.shared.reserve(row.chat_id, row.is_group, row.weight)
                if not grant.granted:  # another instance sent to this chat a moment ago
                    self.slots.release()
                    if grant.wait > POSTPONE_AFTER and not row.is_group:
                        await self._postpone(row, grant.wait)
                        continue
                    self.not_before[row.id] = self.monotonic() + grant.wait
                    heapq.heappush(queue, (grant.wait, row.id, row))
                    continue
                if grant.wait > 0:
                    await asyncio.sleep(grant.wait)
            self.not_before.pop(row.id, None)
            self.limiter.record(row.chat_id, row.is_group, row.weight)
            self.in_flight.add(row.chat_id)
            task = asyncio.create_task(self._deliver(row))
            self.tasks.add(task)
            task.add_done_callback(self.tasks.discard)
            # Let the task send now: the limiter recorded this instant. Without it, a whole
            # batch is recorded first and its requests leave together later, bunched enough
            # to exceed the overall limit as Telegram measures it.
            await asyncio.sleep(0)
            # The others' keys may now be stale: each is checked again when popped.
        return True

    async def _claim(self) -> list[Delivery]:
        """The oldest due delivery of each chat that is not paying back, up to a batch; owned
        from here on (the heartbeat leaves them alone)."""
        busy = self.limiter.busy_chats(BUSY_HORIZON)
        limit = max(1, round(self.batch / self.mean_weight))
        async with self.sessionmaker() as session:
            rows = await OutboxRepository(session).claim_due(
                self.clock(), limit, self.instance.token, exclude=[*self.in_flight, *busy]
            )
            await session.commit()
        if rows:
            weight = sum(r.weight for r in rows) / len(rows)
            self.mean_weight = 0.5 * self.mean_weight + 0.5 * weight
            self.owned.update(row.id for row in rows)
        return rows

    async def _postpone(self, row: Delivery, wait: float) -> None:
        """Its chat pays back what another instance sent there: back to the queue, so that
        this batch does not wait for it, and this chat is left out of the next claims."""
        self.limiter.defer(row.chat_id, wait)
        self.not_before.pop(row.id, None)
        try:
            async with self.sessionmaker() as session:
                at = self.clock() + timedelta(seconds=wait)
                await OutboxRepository(session).postpone(row.id, self.instance.token, at)
                await session.commit()
        except Exception:  # kept: the heartbeat re-queues what this instance lost track of
            log.exception("outbox: postponing delivery %s failed", row.id)
        self.owned.discard(row.id)

    def _delay(self, row: Delivery) -> float:
        """Until this row may go: the limits, and a photo whose first upload is under way
        waits for its file_id here rather than queueing behind the upload (queued sends
        would all leave together when it ends: a burst the limiter never saw)."""
        wait = self.limiter.chat_delay(row.chat_id, row.is_group, row.weight, self.monotonic())
        if row.id in self.not_before:
            wait = max(wait, self.not_before[row.id] - self.monotonic())
        if row.media_id is not None and self.media.uploading(row.media_id):
            wait = max(wait, UPLOAD_POLL)
        return wait

    async def _deliver(self, row: Delivery) -> None:
        sent = False
        try:
            message = await self._send_counted(row)
            sent = True
        except TelegramRetryAfter as exc:
            # This chat waits; the others go on, unless several chats are told at once.
            await self._flood(row, exc.retry_after)
            await self._transient(row, exc.retry_after, f"429 retry after {exc.retry_after}", False)
        except TelegramForbiddenError as exc:
            await self._settle_blocked(row, exc.message)
        except TelegramMigrateToChat as exc:
            await self._settle_migrated(row, exc.migrate_to_chat_id)
        except (TelegramServerError, TelegramNetworkError, TimeoutError) as exc:
            delay = backoff(row.attempts + 1).total_seconds()
            await self._transient(row, delay, str(exc) or type(exc).__name__, True)
        except TelegramAPIError as exc:  # 400 and the like: sending again would not help
            await self._fail(row, exc.message)
        except Exception as exc:  # never let one message stop the sender
            log.exception("outbox: delivery %s failed unexpectedly", row.id)
            await self._fail(row, repr(exc))
        else:
            # Recorded in batches (see _flush_sent): one transaction per message would cost
            # far more than the HTTP call itself.
            self.sent_buffer.append((row.id, self.clock(), message.message_id))
            if self.on_sent is not None:
                result = self.on_sent(row, message)
                if asyncio.iscoroutine(result):
                    await result
        finally:
            if not sent:  # a sent one stays owned until its 'sent' is written
                self.owned.discard(row.id)
            self.in_flight.discard(row.chat_id)
            self.slots.release()
            self.doorbell.ring()

    async def _flood(self, row: Delivery, retry_after: float) -> None:
        """A 429 on the row's chat: that chat waits `retry_after` (its message goes back to
        the queue for then). 429s from several chats at once mean the overall limit is hit
        (another bot or instance on the token): then everything waits, on every instance."""
        pause = self.limiter.flood(row.chat_id, row.is_group, retry_after)
        if self.shared is not None:
            told = await self.shared.flood(row.chat_id, retry_after)
            if told > pause:  # other instances' 429s counted too
                self.limiter.pause(told)
            elif pause > 0:
                await self.shared.pause(pause)
            pause = max(pause, told)
        if pause > 0:
            log.warning("outbox: 429s from several chats at once: all sends wait %gs", pause)

    async def _send_counted(self, row: Delivery) -> Message:
        """Telegram counts the send at some instant before its answer: the limiter counts it
        from `record` until its answer, and after that from the answer (RateLimiter.done)."""
        try:
            return await self.media.send(row)
        finally:
            self.limiter.done(row.chat_id, row.is_group, row.weight)

    async def _transient(self, row: Delivery, delay: float, error: str, count: bool) -> None:
        """Try again later, until the message has been failing for `max_age`."""
        now = self.clock()
        since = row.failing_since or now
        async with self.sessionmaker() as session:
            if now - since >= self.max_age:
                hours = self.max_age.total_seconds() / 3600
                error = f"gave up after {hours:g} h: {error}"
                await OutboxRepository(session).settle(
                    row.id, status="failed", error=error[:255], claimed_by=None
                )
                permanent = True
            else:
                at = now + timedelta(seconds=delay)
                await OutboxRepository(session).retry_later(row.id, at, error, count, since)
                permanent = False
            if self.alerts is not None:
                await self.alerts.delivery_trouble(session, row, error, permanent, now)
            await session.commit()

    async def _fail(self, row: Delivery, error: str) -> None:
        async with self.sessionmaker() as session:
            await OutboxRepository(session).settle(
                row.id, status="failed", error=error[:255], claimed_by=None
            )
            if self.alerts is not None:
                await self.alerts.delivery_trouble(session, row, error, True, self.clock())
            await session.commit()

    async def _settle_migrated(self, row: Delivery, new_chat_id: int) -> None:
        """400 "group chat was upgraded to a supergroup": remember the new id (used from now
        on, e.g. for the moderation group) and send there what waited for the old one."""
        log.warning("outbox: chat %s is now the supergroup %s", row.chat_id, new_chat_id)
        async with self.sessionmaker() as session:
            await ChatRepository(session).record_migration(row.chat_id, new_chat_id, self.clock())
            await OutboxRepository(session).move_chat(
                row.chat_id, new_chat_id, self.clock(), claimed=row.id
            )
            await session.commit()

    async def _settle_blocked(self, row: Delivery, error: str) -> None:
        async with self.sessionmaker() as session:
            await OutboxRepository(session).block_chat(row.chat_id, error)
            if not row.is_group:
                await MemberRepository(session).set_blocked(row.chat_id, True)
            elif self.alerts is not None:  # the bot was removed from the moderation group
                await self.alerts.delivery_trouble(session, row, error, True, self.clock())
            await session.commit()
