"""The outbox against the emulator's limits when requests are held up on their way (issue 18).

Telegram counts a send when it arrives, not when the bot sent it. Albums held up on their way
(the emulator's `hold`: a busy machine, a slow network) arrive together with what the bot sends
next; a limiter that spaced its sends by when they left then overflows the overall second as
Telegram measures it, and a chat's pay-back of its album starts later than the bot thought.
Nothing here waits for time to pass: the test waits on what the emulator saw."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator
from datetime import UTC, datetime

import pytest
from aiogram import Bot
from aiogram.client.telegram import TelegramAPIServer
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.delivery.outbox import Outbox
from bot.delivery.ratelimit import SendLimits
from bot.telegram.session import JsonSession
from playground import BotAPIEmulator
from storage.db import make_engine, make_sessionmaker
from storage.repositories.members import MemberRepository
from storage.repositories.outbox import NewDelivery, OutboxRepository
from tests.test_emulator import png

TOKEN = "123456:TEST-token"
FIRST = 3001
HELD = 4  # albums held on their way: 28 messages, within the 30 of a second


@pytest.fixture
async def emu() -> AsyncIterator[BotAPIEmulator]:
    async with BotAPIEmulator() as server:
        yield server
        assert not server.internal_errors, server.internal_errors


@pytest.fixture
async def sessionmaker(sqlite_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(sqlite_url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def queue(
    sessionmaker: async_sessionmaker[AsyncSession], album: int, chats: list[int]
) -> None:
    """Each chat: the album, then a text (the summary)."""
    async with sessionmaker() as session:
        items = []
        for chat in chats:
            await MemberRepository(session).get_or_create(chat, "m")
            items += [
                NewDelivery(f"{chat}:album", "results", chat, media_id=album),
                NewDelivery(f"{chat}:text", "results", chat, text=f"summary {chat}"),
            ]
        await OutboxRepository(session).enqueue(items, datetime.now(UTC))
        await session.commit()


def albums_answered(emu: BotAPIEmulator) -> int:
    return sum(1 for c in emu.calls_to("sendMediaGroup") if c.response.get("ok"))


def texts_answered(emu: BotAPIEmulator) -> int:
    return sum(1 for c in emu.calls_to("sendMessage") if c.response.get("ok"))


async def test_albums_held_on_their_way_never_overflow_the_second_where_telegram_counts(
    emu: BotAPIEmulator, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    emu.enforce_limits(global_per_second=30, per_chat_per_second=1, per_group_per_minute=20)
    chats = list(range(FIRST, FIRST + 10))
    for chat in chats:
        emu.add_user(chat, f"R{chat}", "fr")
    async with sessionmaker() as session:
        repo = OutboxRepository(session)
        album = await repo.add_album(
            [await repo.add_media(f"c{i}.png", png(50 + i)) for i in range(7)]
        )
        await session.commit()
    bot = Bot(TOKEN, session=JsonSession(api=TelegramAPIServer.from_base(emu.base_url)))
    outbox = Outbox(sessionmaker, bot, SendLimits(per_second=30))
    task = asyncio.create_task(outbox.run())
    try:
        # The first chat's album uploads the photos; the others go by file id.
        await queue(sessionmaker, album, chats[:1])
        outbox.wake()
        await emu.wait_for(lambda: albums_answered(emu) == 1, timeout=30, what="the upload")
        # Telegram is slow to take albums: four are on their way, unanswered and uncounted.
        gate = emu.hold("sendMediaGroup")
        await queue(sessionmaker, album, chats[1:])
        outbox.wake()
        await emu.wait_for(lambda: gate.held >= HELD, timeout=30, what="albums on their way")
        gate.release()  # ... and counted together now, beside whatever the bot sends next
        await emu.wait_for(
            lambda: albums_answered(emu) == len(chats) and texts_answered(emu) == len(chats),
            timeout=60,
            what="every album and text",
        )
    finally:
        task.cancel()
        await asyncio.gather(task, return_exceptions=True)
        await bot.session.close()
    assert emu.limit_violations == []
