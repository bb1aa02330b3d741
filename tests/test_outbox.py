"""The outbox sender against a scripted Bot: 429, 403, 400, 5xx, media reuse, crash resume."""

from __future__ import annotations

import asyncio
import itertools
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Any

from aiogram import Bot
from aiogram.exceptions import (
    TelegramBadRequest,
    TelegramForbiddenError,
    TelegramRetryAfter,
    TelegramServerError,
)
from aiogram.methods import SendMediaGroup, SendMessage, SendPhoto, TelegramMethod
from aiogram.types import Chat, Message, PhotoSize
from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.outbox import Outbox
from bot.delivery.ratelimit import SendLimits
from storage.models import Delivery, Member
from storage.repositories.members import MemberRepository
from storage.repositories.outbox import NewDelivery, OutboxRepository

TOKEN = "42:" + "A" * 35


class ScriptedBot(Bot):
    """Answers sends like Telegram would, failing where the script says."""

    def __init__(self, failures: dict[int, list[Exception]] | None = None) -> None:
        super().__init__(TOKEN)
        self.failures = failures or {}
        self.sent: list[tuple[int, str]] = []
        self.uploads = 0
        self.ids = itertools.count(1)

    async def __call__(
        self, method: TelegramMethod[Any], request_timeout: int | None = None
    ) -> Any:
        chat_id = int(method.chat_id)  # type: ignore[attr-defined]
        script = self.failures.get(chat_id)
        if script:
            raise script.pop(0)
        chat = Chat(id=chat_id, type="private")
        now = datetime.now(UTC)
        if isinstance(method, SendMediaGroup):
            assert 2 <= len(method.media) <= 10
            out = []
            for i, item in enumerate(method.media):
                if isinstance(item.media, str):
                    file_id = item.media
                else:
                    self.uploads += 1
                    file_id = f"album-{item.media.filename}"
                size = PhotoSize(file_id=file_id, file_unique_id=file_id, width=10, height=10)
                caption = item.caption if i == 0 else None
                self.sent.append((chat_id, f"[album {file_id}] {caption or ''}".strip()))
                out.append(Message(message_id=next(self.ids), date=now, chat=chat, photo=[size]))
            return out
        if isinstance(method, SendPhoto):
            if not isinstance(method.photo, str):
                self.uploads += 1
            self.sent.append((chat_id, "[photo]"))
            size = PhotoSize(file_id="file-1", file_unique_id="u1", width=10, height=10)
            return Message(message_id=next(self.ids), date=now, chat=chat, photo=[size])
        assert isinstance(method, SendMessage)
        self.sent.append((chat_id, method.text))
        return Message(message_id=next(self.ids), date=now, chat=chat, text=method.text)


async def wait_until(condition: Callable[[], Any], timeout: float = 15) -> None:
    deadline = asyncio.get_running_loop().time() + timeout
    while not await condition():
        assert asyncio.get_running_loop().time() < deadline, "condition not met in time"
        await asyncio.sleep(0.02)


async def statuses(sessionmaker: async_sessionmaker[AsyncSession]) -> dict[str, str]:
    async with sessionmaker() as session:
        rows = await session.execute(select(Delivery.dedupe_key, Delivery.status))
        return dict(rows.all())


async def run_outbox(
    sessionmaker: async_sessionmaker[AsyncSession],
    bot: Bot,
    until: Callable[[], Any],
    **options: Any,
) -> None:
    outbox = Outbox(sessionmaker, bot, SendLimits(per_second=100), **options)
    task = asyncio.create_task(outbox.run())
    try:
        await wait_until(until)
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)


async def enqueue(sessionmaker: async_sessionmaker[AsyncSession], items: list[NewDelivery]) -> None:
    async with sessionmaker() as session:
        for item in items:
            await MemberRepository(session).get_or_create(item.chat_id, "m")
        await OutboxRepository(session).enqueue(items, datetime.now(UTC))
        await session.commit()


async def test_errors_are_handled_as_telegram_means_them(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    method = SendMessage(chat_id=0, text="x")
    bot = ScriptedBot(
        {
            2: [TelegramRetryAfter(method, "Too Many Requests: retry after 1", retry_after=1)],
            3: [TelegramForbiddenError(method, "Forbidden: bot was blocked by the user")],
            4: [TelegramBadRequest(method, "Bad Request: chat not found")],
            5: [TelegramServerError(method, "Internal Server Error")],
        }
    )
    await enqueue(
        sessionmaker,
        [NewDelivery(f"k{i}", "t", i, text=f"hello {i}") for i in range(1, 6)]
        + [NewDelivery("k3b", "t", 3, text="second for 3")],
    )

    async def settled() -> bool:
        return all(s not in ("pending", "sending") for s in (await statuses(sessionmaker)).values())

    await run_outbox(sessionmaker, bot, settled)
    assert await statuses(sessionmaker) == {
        "k1": "sent",
        "k2": "sent",
        "k3": "blocked",
        "k3b": "blocked",
        "k4": "failed",
        "k5": "sent",
    }
    assert sorted(bot.sent) == [(1, "hello 1"), (2, "hello 2"), (5, "hello 5")]
    async with sessionmaker() as session:
        assert (await session.get(Member, 3)).blocked  # type: ignore[union-attr]
        failed = await OutboxRepository(session).delivery("k4")
        assert failed is not None and failed.error == "Bad Request: chat not found"


async def test_media_uploaded_once_then_reused_and_order_kept(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        media = await OutboxRepository(session).add_media("chart.png", b"\x89PNG fake")
        await session.commit()
    items = []
    for chat in range(10, 16):
        items.append(NewDelivery(f"c{chat}", "r", chat, text="caption", media_id=media))
        items.append(NewDelivery(f"t{chat}", "r", chat, text=f"summary {chat}"))
    await enqueue(sessionmaker, items)
    bot = ScriptedBot()

    async def all_sent() -> bool:
        return set((await statuses(sessionmaker)).values()) == {"sent"}

    await run_outbox(sessionmaker, bot, all_sent)
    assert bot.uploads == 1
    for chat in range(10, 16):
        mine = [text for c, text in bot.sent if c == chat]
        assert mine == ["[photo]", f"summary {chat}"]


async def test_an_album_is_uploaded_once_then_sent_by_file_ids(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        repo = OutboxRepository(session)
        photos = [await repo.add_media(f"q{i}.png", f"png {i}".encode()) for i in range(3)]
        # A photo Telegram already holds (e.g. sent by /results) is not uploaded again.
        known = await repo.add_media("q3.png", b"png 3", file_id="held-3")
        album = await repo.add_album([*photos, known])
        await session.commit()
    items = []
    for chat in range(20, 25):
        items.append(NewDelivery(f"a{chat}", "r", chat, text="Results", media_id=album))
        items.append(NewDelivery(f"s{chat}", "r", chat, text=f"summary {chat}"))
    await enqueue(sessionmaker, items)
    bot = ScriptedBot()
    told: list[tuple[bytes, str]] = []

    async def all_sent() -> bool:
        return set((await statuses(sessionmaker)).values()) == {"sent"}

    await run_outbox(
        sessionmaker, bot, all_sent, on_photo_uploaded=lambda png, fid: told.append((png, fid))
    )
    assert bot.uploads == 3
    for chat in range(20, 25):
        mine = [text for c, text in bot.sent if c == chat]
        assert mine == [
            "[album album-q0.png] Results",
            "[album album-q1.png]",
            "[album album-q2.png]",
            "[album held-3]",
            f"summary {chat}",
        ]
    assert (b"png 0", "album-q0.png") in told and len(told) == 4
    async with sessionmaker() as session:
        stored = await OutboxRepository(session).media(photos[1])
        assert stored is not None and stored.file_id == "album-q1.png"


async def test_resume_after_crash_sends_nothing_twice(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await enqueue(sessionmaker, [NewDelivery(f"r{i}", "t", 100 + i, text="x") for i in range(4)])
    long_ago = datetime.now(UTC) - timedelta(hours=1)
    async with sessionmaker() as session:
        repo = OutboxRepository(session)
        await repo.settle((await repo.delivery("r0")).id, status="sent", sent_at=long_ago)  # type: ignore[union-attr]
        # r1 was being sent when the process died.
        await repo.settle((await repo.delivery("r1")).id, status="sending", claimed_at=long_ago)  # type: ignore[union-attr]
        await session.commit()
    bot = ScriptedBot()

    async def all_sent() -> bool:
        return set((await statuses(sessionmaker)).values()) == {"sent"}

    await run_outbox(sessionmaker, bot, all_sent)
    assert sorted(c for c, _ in bot.sent) == [101, 102, 103]


async def test_enqueue_is_idempotent(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    items = [NewDelivery("same", "t", 1, text="once")]
    await enqueue(sessionmaker, items)
    await enqueue(sessionmaker, items)
    assert await statuses(sessionmaker) == {"same": "pending"}


class TimedBot(ScriptedBot):
    """A ScriptedBot that notes when each chat was answered, and how (sent or 429)."""

    def __init__(self, failures: dict[int, list[Exception]]) -> None:
        super().__init__(failures)
        self.answers: list[tuple[float, int, bool]] = []  # (monotonic, chat, sent)

    async def __call__(
        self, method: TelegramMethod[Any], request_timeout: int | None = None
    ) -> Any:
        chat_id = int(method.chat_id)  # type: ignore[attr-defined]
        try:
            result = await super().__call__(method, request_timeout)
        except TelegramRetryAfter:
            self.answers.append((asyncio.get_running_loop().time(), chat_id, False))
            raise
        self.answers.append((asyncio.get_running_loop().time(), chat_id, True))
        return result


def retry_after(seconds: int) -> TelegramRetryAfter:
    method = SendMessage(chat_id=0, text="x")
    return TelegramRetryAfter(method, f"Too Many Requests: retry after {seconds}", seconds)


async def test_a_429_on_one_chat_holds_that_chat_and_not_the_others(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """Our own pacing keeps the overall rate under the limit: a 429 on one chat is about that
    chat, which waits retry_after (its message re-queued, sent once), while the others go."""
    bot = TimedBot({1: [retry_after(3)]})
    await enqueue(
        sessionmaker, [NewDelivery(f"k{i}", "t", i, text=f"hi {i}") for i in range(1, 61)]
    )

    async def all_sent() -> bool:
        return set((await statuses(sessionmaker)).values()) == {"sent"}

    await run_outbox(sessionmaker, bot, all_sent)
    [told] = [t for t, chat, sent in bot.answers if not sent]
    others = [t for t, chat, sent in bot.answers if sent and chat != 1]
    assert len(others) == 59
    # 59 messages at 100/s: well under a second, not after chat 1's three seconds.
    assert max(others) - told < 1.5
    [again] = [t for t, chat, sent in bot.answers if sent and chat == 1]
    assert again - told >= 2.9
    assert sorted(chat for chat, _ in bot.sent) == list(range(1, 61))  # each once


async def test_429s_on_several_chats_at_once_still_pause_everything(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """429s from three chats within retry_after + 1 s: the overall limit is hit (another
    instance or bot on the token, Telegram slowing down), and every send waits."""
    bot = TimedBot({chat: [retry_after(2)] for chat in (1, 2, 3)})
    await enqueue(
        sessionmaker, [NewDelivery(f"k{i}", "t", i, text=f"hi {i}") for i in range(1, 61)]
    )

    async def all_sent() -> bool:
        return set((await statuses(sessionmaker)).values()) == {"sent"}

    await run_outbox(sessionmaker, bot, all_sent)
    third = sorted(t for t, _, sent in bot.answers if not sent)[2]
    # Sends already on their way when the third 429 came back may land just after it.
    during = [t for t, _, sent in bot.answers if sent and third + 0.1 < t < third + 1.9]
    assert during == []
    assert len(bot.sent) == 60 and len({chat for chat, _ in bot.sent}) == 60
