"""An update's session gives its pooled connection back before it waits for Telegram when
it has only read (storage/session_reads.py, bot/telegram/middlewares/database.py)."""

from __future__ import annotations

import asyncio
from typing import Any

from aiogram.methods import GetMe
from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.telegram.middlewares.database import _CURRENT, EndReadsBeforeTelegram, _UpdateSession
from storage.models import Member
from storage.session_reads import end_reads


def checked_out(sessionmaker: async_sessionmaker[AsyncSession]) -> int:
    return sessionmaker.kw["bind"].sync_engine.pool.checkedout()


async def _member(sessionmaker: async_sessionmaker[AsyncSession], member_id: int) -> None:
    async with sessionmaker() as session:
        session.add(Member(id=member_id, first_name="Anne", language="fr"))
        await session.commit()


async def test_a_read_gives_its_connection_back_and_keeps_what_it_loaded(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _member(sessionmaker, 1)
    async with sessionmaker() as session:
        member = await session.get(Member, 1)
        assert member is not None
        assert checked_out(sessionmaker) == 1
        assert await end_reads(session)
        assert checked_out(sessionmaker) == 0
        # Still loaded (no lazy load on an expired object, which would fail under asyncio).
        assert (member.first_name, member.language, member.roles) == ("Anne", "fr", [])
        # The next statement takes a connection again.
        assert await session.scalar(select(Member.first_name).where(Member.id == 1)) == "Anne"
        assert checked_out(sessionmaker) == 1


async def test_a_transaction_that_wrote_or_locked_is_left_to_its_commit(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _member(sessionmaker, 2)
    async with sessionmaker() as session:
        member = await session.get(Member, 2)
        assert member is not None
        member.language = "nl"  # changed, not flushed
        assert not await end_reads(session)
        await session.flush()  # flushed, not committed
        assert not await end_reads(session)
        await session.rollback()
    async with sessionmaker() as session:
        await session.execute(update(Member).where(Member.id == 2).values(language="en"))
        assert not await end_reads(session)
        await session.commit()
        # A new transaction that only reads may end again.
        await session.scalar(select(Member.language).where(Member.id == 2))
        assert await end_reads(session)
    async with sessionmaker() as session:
        await session.execute(select(Member).where(Member.id == 2).with_for_update())
        assert not await end_reads(session)
        assert (await session.get(Member, 2)).language == "en"  # type: ignore[union-attr]


class _Bot:
    """What the request middleware is given; the request itself is recorded."""


async def test_before_a_bot_api_call_only_the_updates_own_task_ends_its_reads(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    await _member(sessionmaker, 3)
    middleware = EndReadsBeforeTelegram()
    seen: list[int] = []

    async def make_request(bot: Any, method: Any) -> Any:
        seen.append(checked_out(sessionmaker))
        return None

    async with sessionmaker() as session:
        await session.get(Member, 3)
        token = _CURRENT.set(_UpdateSession(session, asyncio.current_task()))
        try:
            # A task the update started (same context, another task) leaves the session alone.
            await asyncio.create_task(middleware(make_request, _Bot(), GetMe()))  # type: ignore[arg-type]
            # The update's own call gives the connection back before the request.
            await middleware(make_request, _Bot(), GetMe())  # type: ignore[arg-type]
        finally:
            _CURRENT.reset(token)
    assert seen == [1, 0]
    # Outside an update, nothing to do.
    await middleware(make_request, _Bot(), GetMe())  # type: ignore[arg-type]
    assert seen == [1, 0, 0]
