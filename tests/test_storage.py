"""Repositories and the FSM storages against real SQLite and PostgreSQL (and Redis)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from typing import Any
from unittest.mock import ANY
from uuid import uuid4

import pytest
from aiogram.fsm.storage.base import DefaultKeyBuilder, StorageKey
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import PhaseKind, Role
from bot.members.invitations import create_invitation, hash_token, redeem
from bot.survey.service import SurveyService
from storage.dialog_state.sql_storage import SQLStorage
from storage.redis_pool import redis_client
from storage.repositories.invitations import Redeem
from storage.repositories.members import MemberRepository
from storage.repositories.survey import SurveyRepository
from tests.support import (
    REDIS_URL,
    answer_survey,
    consultation_with_notes,
    record_calls,
    seed_answers,
)

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


async def test_answers_are_saved_replaced_and_submitted(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    c = consultation_with_notes()
    survey = c.phase(PhaseKind.SURVEY)
    assert survey is not None
    now = survey.starts + timedelta(days=1)
    challenges, notes = c.question("challenges"), c.question("notes")
    assert challenges is not None and notes is not None
    async with sessionmaker() as session:
        member, created = await MemberRepository(session).get_or_create(42, "Anne")
        assert created
        await session.commit()
        service = SurveyService(session, c)
        await service.save(member.id, challenges, ["inclusion", "strategy"], None, now)
        await service.save(member.id, notes, [], "Plus de bancs", now)
    async with sessionmaker() as session:
        repo = SurveyRepository(session)
        response = await repo.response(c.id, 42)
        assert response is not None and response.status == "draft"
        answers = await repo.answers(response.id)
        assert set(answers["challenges"].choices) == {"inclusion", "strategy"}
        assert answers["notes"].text == "Plus de bancs"
        # Without `inclusion`, the notes are no longer asked: their answer goes.
        await SurveyService(session, c).save(42, challenges, ["nuisances"], None, now)
        rest = {q: choices for q, choices in seed_answers()[0].items() if q != "challenges"}
        await answer_survey(session, c, 42, rest, now)  # and submit
    async with sessionmaker() as session:
        repo = SurveyRepository(session)
        response = await repo.response(c.id, 42)
        assert response is not None and response.status == "submitted"
        answers = await repo.answers(response.id)
        assert set(answers) == {"challenges", *rest}
        assert answers["challenges"] == type(answers["challenges"])(("nuisances",), None)


async def test_members_roles_and_blocking(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        repo = MemberRepository(session)
        for i, role in [(1, Role.OFFICIAL), (2, Role.AMBASSADOR), (3, Role.OFFICIAL)]:
            member, _ = await repo.get_or_create(i, f"m{i}")
            assert await repo.add_role(member, role)
            assert not await repo.add_role(member, role)
        await repo.set_blocked(3, True)
        await session.commit()
        assert await repo.ids_with_roles([Role.OFFICIAL]) == [1]
        assert await repo.ids_with_roles([Role.OFFICIAL, Role.AMBASSADOR]) == [1, 2]
        assert await repo.ids_with_roles([Role.OFFICIAL], include_blocked=True) == [1, 3]


async def test_invitations_expire_and_get_used_up(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        for i in range(1, 5):
            await MemberRepository(session).get_or_create(i, f"m{i}")
        await session.commit()
        token = await create_invitation(session, Role.OFFICIAL, 2, timedelta(days=7), NOW)
        assert len(token) >= 32  # 24 random bytes, url-safe
        assert (await redeem(session, token, 1, NOW)).outcome == Redeem.OK
        await session.commit()
        # The same member again: welcomed, no second use counted.
        assert (await redeem(session, token, 1, NOW)).outcome == Redeem.ALREADY
        assert (await redeem(session, token, 2, NOW)).outcome == Redeem.OK
        await session.commit()
        assert (await redeem(session, token, 3, NOW)).outcome == Redeem.USED_UP
        late = await create_invitation(session, Role.AMBASSADOR, None, timedelta(hours=1), NOW)
        later = NOW + timedelta(hours=2)
        assert (await redeem(session, late, 4, later)).outcome == Redeem.EXPIRED
        assert (await redeem(session, "forged-token", 4, NOW)).outcome == Redeem.UNKNOWN
        assert hash_token(token) != token


async def test_last_use_cannot_be_won_twice(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        for i in range(1, 9):
            await MemberRepository(session).get_or_create(i, f"m{i}")
        await session.commit()
        token = await create_invitation(session, Role.OFFICIAL, 3, None, NOW)

    async def attempt(member_id: int) -> Redeem:
        async with sessionmaker() as session:
            outcome = (await redeem(session, token, member_id, NOW)).outcome
            await session.commit()
            return outcome

    outcomes = await asyncio.gather(*(attempt(i) for i in range(1, 9)))
    assert outcomes.count(Redeem.OK) == 3
    assert outcomes.count(Redeem.USED_UP) == 5


async def _round_trip(storage: SQLStorage | object) -> None:
    key = StorageKey(bot_id=1, chat_id=2, user_id=3, destiny="aiogd_stack")
    await storage.set_state(key, "Survey:question")  # type: ignore[attr-defined]
    await storage.set_data(key, {"stack": ["a", "b"], "n": 1})  # type: ignore[attr-defined]
    assert await storage.get_state(key) == "Survey:question"  # type: ignore[attr-defined]
    assert await storage.get_data(key) == {"stack": ["a", "b"], "n": 1}  # type: ignore[attr-defined]
    other = StorageKey(bot_id=1, chat_id=2, user_id=3, destiny="default")
    assert await storage.get_data(other) == {}  # type: ignore[attr-defined]
    # What json.dumps did with them: integer keys come back as strings, accents as they were.
    await storage.set_data(other, {7: "Liège", "widget": {1: True}})  # type: ignore[attr-defined]
    assert await storage.get_data(other) == {"7": "Liège", "widget": {"1": True}}  # type: ignore[attr-defined]
    await storage.set_data(other, {})  # type: ignore[attr-defined]
    await storage.set_state(key, None)  # type: ignore[attr-defined]
    await storage.set_data(key, {})  # type: ignore[attr-defined]
    assert await storage.get_state(key) is None  # type: ignore[attr-defined]
    assert await storage.get_data(key) == {}  # type: ignore[attr-defined]


async def test_sql_fsm_storage(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await _round_trip(SQLStorage(sessionmaker))


async def test_redis_fsm_storage() -> None:
    from aiogram.fsm.storage.redis import RedisStorage

    storage = RedisStorage.from_url(REDIS_URL, key_builder=DefaultKeyBuilder(with_destiny=True))
    try:
        await storage.redis.ping()
    except OSError as exc:
        pytest.fail(f"Redis is required for this test and unreachable at {REDIS_URL}: {exc}")
    try:
        await _round_trip(storage)
    finally:
        await storage.close()


async def test_redis_dialog_storage_skips_only_writes_that_change_nothing() -> None:
    from storage.dialog_state.redis_storage import RedisDialogStorage

    builder = DefaultKeyBuilder(with_destiny=True, prefix=f"fsm-test-{uuid4().hex[:8]}")
    one = RedisDialogStorage(redis_client(REDIS_URL), key_builder=builder)
    other = RedisDialogStorage(redis_client(REDIS_URL), key_builder=builder)  # another instance
    try:
        await one.redis.ping()
    except OSError as exc:
        pytest.fail(f"Redis is required for this test and unreachable at {REDIS_URL}: {exc}")
    key = StorageKey(bot_id=1, chat_id=5, user_id=5, destiny="aiogd:stack:")
    name = builder.build(key, "data")
    prefix = name[: name.index("aiogd:stack:")]

    async def turn(read: bool, data: dict[str, Any]) -> dict[str, str | None]:
        """One update of the member, in its turn (what the member lock does): aiogram-dialog
        reads the stack, then writes it back. Returns what goes with the lock's release."""
        one.begin_turn(prefix, {})
        if read:
            await one.get_data(key)
        await one.set_data(key, data)
        kept = one.end_turn()
        for k, raw in kept.items():  # the release script's writes
            await (one.redis.set(k, raw) if raw is not None else one.redis.delete(k))
        return kept

    try:
        assert await asyncio.create_task(turn(True, {"intents": ["a"]})) == {name: ANY}
        assert await other.get_data(key) == {"intents": ["a"]}
        assert await asyncio.create_task(turn(True, {"intents": ["a"]})) == {}  # unchanged
        assert await asyncio.create_task(turn(True, {"intents": ["a", "b"]})) == {name: ANY}
        assert await other.get_data(key) == {"intents": ["a", "b"]}
        # Another instance changes it; a write here that no read preceded is sent.
        await other.set_data(key, {"intents": ["c"]})
        assert await asyncio.create_task(turn(False, {"intents": ["a", "b"]})) == {name: ANY}
        assert await other.get_data(key) == {"intents": ["a", "b"]}
        # Outside a turn, reads and writes go to Redis as they come.
        sets = record_calls(one.redis, "set")
        await one.get_data(key)
        await one.set_data(key, {"intents": ["a", "b"]})
        assert len(sets) == 1
        await asyncio.create_task(turn(True, {}))  # emptied: deleted with the release
        assert await other.get_data(key) == {}
        assert one.turns == {}  # nothing of an update outlives it
    finally:
        await one.close()
        await other.close()
