"""Several instances without duplicates: one notification flusher at a time (claimed rows),
/announce keyed by its dialog, and the overall send rate shared through Redis."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from redis.asyncio import Redis
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import Role
from bot.delivery.ratelimit import SendLimits
from bot.delivery.shared_ratelimit import SharedRateLimit
from bot.organisers.announce import announce
from storage.db import make_engine, make_sessionmaker
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRepository
from tests.support import REDIS_URL, unique_name
from tests.test_dialogs import Clock, Wired
from tests.test_ideas_dialogs import NOW, add_member, deliveries, make_app, seed_idea


async def test_one_notification_flusher_at_a_time(tmp_path: Path, postgres_url: str) -> None:
    engine = make_engine(postgres_url)
    sessionmaker = make_sessionmaker(engine)
    try:
        # Two instances whose clocks differ by a second: their notes would not share a key.
        first = make_app(tmp_path, sessionmaker, Clock(NOW + timedelta(minutes=20)))
        second = make_app(tmp_path, sessionmaker, Clock(NOW + timedelta(minutes=20, seconds=1)))
        await add_member(sessionmaker, 7, "Anne")
        await add_member(sessionmaker, 8, "Bob")
        idea_id = await seed_idea(first, 7, "Un potager")
        async with sessionmaker() as session:
            state = await IdeaRepository(session).notification_state(7, idea_id)
            state.last_sent_at = NOW
            state.pending_comments = 2
            await session.commit()

        async with sessionmaker() as holding:
            # The first flusher has claimed the due rows and not committed yet...
            claimed = await IdeaRepository(holding).due_notifications(NOW + timedelta(minutes=10))
            assert len(claimed) == 1
            # ... the other instance's flush skips them instead of sending them too.
            async with sessionmaker() as session:
                assert (
                    await asyncio.wait_for(second.use(session).ideas.flush_notifications(), 10) == 0
                )
            await holding.rollback()

        flushes = await asyncio.gather(
            *(_flush(sessionmaker, w) for w in (first, second, first, second))
        )
        assert sorted(flushes) == [0, 0, 0, 1]
        assert len(await deliveries(sessionmaker, "notification", 7)) == 1
    finally:
        await engine.dispose()


async def _flush(sessionmaker: async_sessionmaker[AsyncSession], w: Wired) -> int:
    async with sessionmaker() as session:
        return await w.use(session).ideas.flush_notifications()


async def test_announce_confirmed_twice_is_queued_once(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        repo = MemberRepository(session)
        for member_id in (11, 12, 13):
            member, _ = await repo.get_or_create(member_id, f"m{member_id}")
            await repo.add_role(member, Role.AMBASSADOR)
        await session.commit()
    now = datetime.now(UTC)
    for _ in range(2):  # the button pressed again after a crash, or the update redelivered
        async with sessionmaker() as session:
            assert await announce(session, "c1", "amb", "Hello", now, "dialog-ab12") == 3
    assert len(await deliveries(sessionmaker, "announce:dialog-ab12")) == 3
    async with sessionmaker() as session:  # another /announce dialog is another announcement
        await announce(session, "c1", "amb", "Hello", now, "dialog-cd34")
    assert len(await deliveries(sessionmaker, "announce:dialog-cd34")) == 3


@pytest.fixture
async def redis_prefix() -> str:
    client = Redis.from_url(REDIS_URL)
    try:
        await client.ping()
    except OSError as exc:
        pytest.fail(f"Redis is required for this test and unreachable at {REDIS_URL}: {exc}")
    finally:
        await client.aclose()
    return unique_name("consultbot-test")


async def test_send_rate_shared_by_two_instances_through_redis(redis_prefix: str) -> None:
    limits = SendLimits(per_second=20)
    a = SharedRateLimit(Redis.from_url(REDIS_URL), limits, redis_prefix)
    b = SharedRateLimit(Redis.from_url(REDIS_URL), limits, redis_prefix)
    try:
        loop = asyncio.get_running_loop()

        async def slot(limit: SharedRateLimit, chat_id: int) -> tuple[float, float]:
            """When the slot is, as the earliest and the latest it can be: `wait` counts from
            Redis's clock when the script ran, some time between asking and the answer (a
            busy machine makes that span milliseconds long)."""
            asked = loop.time()
            grant = await limit.reserve(chat_id, False)
            assert grant.granted
            return asked + grant.wait, loop.time() + grant.wait

        # Two instances each want to send 30 messages at once, to 60 different chats.
        slots = sorted(
            await asyncio.gather(*(slot(a if i % 2 else b, 1000 + i) for i in range(60)))
        )
        assert not a.broken and not b.broken
        # Never more than 20 in any second, taken together: of any 21 slots, the last is at
        # least a second after the first.
        for i in range(len(slots) - 20):
            latest = max(upper for _lower, upper in slots[i : i + 21])
            assert latest - slots[i][0] >= 0.98, (i, slots[i : i + 21])
        assert slots[-1][0] - slots[0][1] < 3.3  # and not slower than the rate either

        # A chat that one instance just wrote to is not ready for the other for a second
        # (counted on a fresh schedule: the 60 slots above reach 3 s ahead).
        a.prefix = b.prefix = f"{redis_prefix}:again"
        first = await a.reserve(5, False)
        second = await b.reserve(5, False)
        assert first.granted and not second.granted
        assert 0.8 < second.wait <= 1.04

        # A 429 seen by one instance holds the other back.
        await a.pause(2)
        held = await b.reserve(6, False)
        assert held.granted and held.wait >= 1.9
    finally:
        await a.close()
        await b.close()


async def test_shared_rate_counts_each_photo_of_an_album(redis_prefix: str) -> None:
    """Through Redis too, an album takes as many overall slots as it has photos (leaving at
    the last one) and its chat pays it back at 1 s per photo, whichever instance asks."""
    limits = SendLimits(per_second=10, margin=0.0)
    a = SharedRateLimit(Redis.from_url(REDIS_URL), limits, redis_prefix)
    b = SharedRateLimit(Redis.from_url(REDIS_URL), limits, redis_prefix)
    try:
        single = await a.reserve(1, False)
        album = await b.reserve(2, False, weight=7)
        after = await a.reserve(3, False)
        assert single.granted and album.granted and after.granted
        # The single took slot 0; the album slots 1..7 and leaves at 7; the next one at 8.
        # (each wait counts from its own call, a little later than the one before)
        assert 0.65 < album.wait - single.wait <= 0.701
        assert 0.75 < after.wait - single.wait <= 0.801
        again = await a.reserve(2, False)  # the album's chat, from the other instance
        assert not again.granted and 6.9 < again.wait <= 7.0 + album.wait
    finally:
        await a.close()
        await b.close()


async def test_a_429_holds_its_chat_on_every_instance_and_several_pause_all(
    redis_prefix: str,
) -> None:
    """A 429 on one chat, seen by one instance, holds that chat on the other (its message
    would be refused there too) but not the other chats; 429s from three chats at once, told
    by either instance, pause everything on both."""
    limits = SendLimits(per_second=20, margin=0.0)
    a = SharedRateLimit(Redis.from_url(REDIS_URL), limits, redis_prefix)
    b = SharedRateLimit(Redis.from_url(REDIS_URL), limits, redis_prefix)
    try:
        assert await a.flood(1, 3) == 0
        held = await b.reserve(1, False)
        assert not held.granted and 2.8 < held.wait <= 3.0
        other = await b.reserve(2, False)
        assert other.granted and other.wait < 0.2

        assert await b.flood(3, 2) == 0
        assert await a.flood(4, 2) == 3  # the third chat: the largest retry_after, for all
        paused = await b.reserve(5, False)
        assert paused.granted and 2.8 < paused.wait <= 3.0
        group = await a.reserve(-100, True)
        assert group.granted and 2.8 < group.wait <= 3.1  # the slot after the one above
    finally:
        await a.close()
        await b.close()
