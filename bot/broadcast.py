"""The durable outbox sender: Telegram's rate limits, retries, blocked users, crash resume."""

from __future__ import annotations

import asyncio
import contextlib
import heapq
import json
import logging
import time
from collections.abc import Callable
from datetime import timedelta

from aiogram import Bot
from aiogram.exceptions import (
    TelegramAPIError,
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramMigrateToChat,
    TelegramNetworkError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.types import BufferedInputFile, InlineKeyboardMarkup, Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.context import Clock, system_clock
from bot.ratelimit import RateLimiter, SendLimits
from storage.models import Delivery
from storage.repositories.chats import ChatRepository
from storage.repositories.members import MemberRepository
from storage.repositories.outbox import OutboxRepository, backoff

log = logging.getLogger(__name__)
MAX_ATTEMPTS = 8
STALE_CLAIM = timedelta(minutes=2)
UPLOAD_POLL = 0.02  # seconds between two looks at an upload in progress
FLUSH_EVERY = 0.02  # seconds between two writes of the 'sent' results


class Outbox:
    """Delivers what the outbox table holds; one task per process, safe with several processes."""

    def __init__(
        self,
        sessionmaker: async_sessionmaker[AsyncSession],
        bot: Bot,
        limits: SendLimits,
        clock: Clock = system_clock,
        monotonic: Callable[[], float] = time.monotonic,
        batch: int = 500,
        concurrency: int = 16,
        on_sent: Callable[[Delivery, Message], object] | None = None,
        stale_after: timedelta = STALE_CLAIM,
    ) -> None:
        self.stale_after = stale_after
        self.sent_buffer: list[tuple[int, dict[str, object]]] = []
        self.last_release = 0.0
        self.sessionmaker = sessionmaker
        self.bot = bot
        self.clock = clock
        self.limiter = RateLimiter(limits, monotonic)
        self.monotonic = monotonic
        self.batch = batch
        self.slots = asyncio.Semaphore(concurrency)
        self.wakeup = asyncio.Event()
        self.in_flight: set[int] = set()
        self.tasks: set[asyncio.Task[None]] = set()
        self.upload_locks: dict[int, asyncio.Lock] = {}
        self.file_ids: dict[int, str] = {}
        self.on_sent = on_sent

    def wake(self) -> None:
        """Called after a commit that queued deliveries, so they leave at once."""
        self.wakeup.set()

    async def release_stale(self) -> None:
        """Claims left by a sender that died go back to the queue (checked now and then)."""
        self.last_release = self.monotonic()
        async with self.sessionmaker() as session:
            released = await OutboxRepository(session).release_stale(
                self.clock() - self.stale_after
            )
            await session.commit()
        if released:
            log.warning("outbox: %d deliveries interrupted by a crash are queued again", released)

    async def _flush_sent(self) -> None:
        """Write the buffered 'sent' results in one transaction; keep them on failure."""
        if not self.sent_buffer:
            return
        batch, self.sent_buffer = self.sent_buffer, []
        try:
            async with self.sessionmaker() as session:
                repo = OutboxRepository(session)
                for delivery_id, values in batch:
                    await repo.settle(delivery_id, **values)
                await session.commit()
        except Exception:
            log.exception("outbox: recording %d sent messages failed; will retry", len(batch))
            self.sent_buffer[:0] = batch
            return
        self.wakeup.set()  # those chats' next messages may now be claimed

    async def _flush_loop(self) -> None:
        while True:
            await asyncio.sleep(FLUSH_EVERY)
            await self._flush_sent()

    async def run(self) -> None:
        await self.release_stale()
        flusher = asyncio.create_task(self._flush_loop(), name="outbox-flush")
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
            if self.tasks:
                await asyncio.gather(*self.tasks, return_exceptions=True)
            flusher.cancel()
            await asyncio.gather(flusher, return_exceptions=True)
            await self._flush_sent()

    async def _idle(self) -> None:
        if self.monotonic() - self.last_release > min(10.0, self.stale_after.total_seconds()):
            await self.release_stale()
        async with self.sessionmaker() as session:
            due = await OutboxRepository(session).next_due()
        timeout = 1.0
        if due is not None:
            timeout = min(timeout, max(0.05, (due - self.clock()).total_seconds()))
        self.wakeup.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self.wakeup.wait(), timeout)
        # Python 3.11's wait_for loses a cancellation that arrives as the event is set: the
        # sender then ran on forever after shutdown asked it to stop.
        task = asyncio.current_task()
        if task is not None and task.cancelling():
            raise asyncio.CancelledError

    async def pump(self) -> bool:
        """Claim one batch of due deliveries and send it, respecting the limits."""
        async with self.sessionmaker() as session:
            rows = await OutboxRepository(session).claim_due(
                self.clock(), self.batch, exclude=list(self.in_flight)
            )
            await session.commit()
        if not rows:
            return False
        queue: list[tuple[float, int, Delivery]] = []
        for row in rows:
            heapq.heappush(queue, (self.limiter.delay(row.chat_id, row.is_group), row.id, row))
        while queue:
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
            await self.slots.acquire()
            self.limiter.record(row.chat_id, row.is_group)
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

    def _delay(self, row: Delivery) -> float:
        """Until this row may go: the limits, and a photo whose first upload is under way
        waits for its file_id here rather than queueing behind the upload (queued sends
        would all leave together when it ends: a burst the limiter never saw)."""
        wait = self.limiter.delay(row.chat_id, row.is_group)
        if row.media_id is not None and row.media_id not in self.file_ids:
            lock = self.upload_locks.get(row.media_id)
            if lock is not None and lock.locked():
                wait = max(wait, UPLOAD_POLL)
        return wait

    async def _deliver(self, row: Delivery) -> None:
        try:
            message = await self._send(row)
        except TelegramRetryAfter as exc:
            self.limiter.pause(exc.retry_after)
            await self._settle_retry(
                row, exc.retry_after, f"429 retry after {exc.retry_after}", False
            )
        except TelegramForbiddenError as exc:
            await self._settle_blocked(row, exc.message)
        except TelegramMigrateToChat as exc:
            await self._settle_migrated(row, exc.migrate_to_chat_id)
        except (TelegramServerError, TelegramNetworkError, TimeoutError) as exc:
            if row.attempts + 1 >= MAX_ATTEMPTS:
                await self._settle(row, status="failed", error=str(exc)[:255])
            else:
                delay = backoff(row.attempts + 1).total_seconds()
                await self._settle_retry(row, delay, str(exc), True)
        except TelegramBadRequest as exc:
            await self._settle(row, status="failed", error=exc.message[:255])
        except TelegramAPIError as exc:
            await self._settle(row, status="failed", error=exc.message[:255])
        except Exception as exc:  # never let one message stop the sender
            log.exception("outbox: delivery %s failed unexpectedly", row.id)
            await self._settle(row, status="failed", error=repr(exc)[:255])
        else:
            # Recorded in batches (see _flush_sent): one transaction per message would cost
            # far more than the HTTP call itself.
            self.sent_buffer.append(
                (
                    row.id,
                    {
                        "status": "sent",
                        "sent_at": self.clock(),
                        "message_id": message.message_id,
                        "error": None,
                    },
                )
            )
            if self.on_sent is not None:
                result = self.on_sent(row, message)
                if asyncio.iscoroutine(result):
                    await result
        finally:
            self.in_flight.discard(row.chat_id)
            self.slots.release()
            self.wakeup.set()

    async def _send(self, row: Delivery) -> Message:
        markup = (
            InlineKeyboardMarkup.model_validate(json.loads(row.reply_markup))
            if row.reply_markup
            else None
        )
        if row.media_id is None:
            return await self.bot.send_message(row.chat_id, row.text or "", reply_markup=markup)
        file_id = self.file_ids.get(row.media_id)
        if file_id is not None:
            return await self.bot.send_photo(
                row.chat_id, file_id, caption=row.text, reply_markup=markup
            )
        lock = self.upload_locks.setdefault(row.media_id, asyncio.Lock())
        async with lock:  # the first one uploads; the others wait, then reuse its file_id
            self.limiter.restamp(row.chat_id, row.is_group)
            if row.media_id in self.file_ids:
                return await self.bot.send_photo(
                    row.chat_id, self.file_ids[row.media_id], caption=row.text, reply_markup=markup
                )
            async with self.sessionmaker() as session:
                media = await OutboxRepository(session).media(row.media_id)
            if media is None:
                return await self.bot.send_message(row.chat_id, row.text or "", reply_markup=markup)
            photo: str | BufferedInputFile = media.file_id or BufferedInputFile(
                media.data, filename=media.filename
            )
            self.limiter.restamp(row.chat_id, row.is_group)  # after the media's read
            message = await self.bot.send_photo(
                row.chat_id, photo, caption=row.text, reply_markup=markup
            )
            if media.file_id:
                self.file_ids[media.id] = media.file_id
            elif message.photo:
                self.file_ids[media.id] = message.photo[-1].file_id
                async with self.sessionmaker() as session:
                    await OutboxRepository(session).set_file_id(media.id, message.photo[-1].file_id)
                    await session.commit()
            return message

    async def _settle(self, row: Delivery, **values: object) -> None:
        async with self.sessionmaker() as session:
            await OutboxRepository(session).settle(row.id, **values)
            await session.commit()

    async def _settle_retry(self, row: Delivery, delay: float, error: str, count: bool) -> None:
        at = self.clock() + timedelta(seconds=delay)
        async with self.sessionmaker() as session:
            await OutboxRepository(session).retry_later(row.id, at, error, count)
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
            await session.commit()
