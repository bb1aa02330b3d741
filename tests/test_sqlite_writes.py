"""SQLite under many writers: one writer at a time through the gate, transactions that mean
what they say, the dialog storage's cache, and answers stored in a few statements."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

import pytest
from aiogram.fsm.storage.base import StorageKey
from sqlalchemy import event, func, select, text
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import load_consultation
from bot.survey.service import SurveyService, hidden_by
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.dialog_state.sql_storage import SQLStorage
from storage.hot_path.statements import Direct
from storage.models import FsmRecord, Member
from storage.repositories.members import MemberRepository
from storage.repositories.survey import StoredAnswer, SurveyRepository
from tests.support import DEFAULT_CONSULTATION

NOW = datetime(2020, 5, 10, 12, 0, tzinfo=UTC)  # the seed survey is open
C = load_consultation(DEFAULT_CONSULTATION)


@pytest.fixture
async def sqlite_sessions(tmp_path: Path) -> async_sessionmaker[AsyncSession]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'w.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    await engine.dispose()


async def test_many_read_then_write_transactions_at_once(
    sqlite_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """Each reads, then writes. SQLite's busy handler is switched off here: no connection may
    ever find the database locked by another one of this process (without the gate, most
    of them do and fail with 'database is locked')."""
    engine = make_engine(str(sqlite_sessions.kw["bind"].url), sqlite_busy_timeout=0)
    sessions = make_sessionmaker(engine)

    async def member(i: int) -> None:
        async with sessions() as session:
            await session.scalar(select(func.count()).select_from(Member))
            await MemberRepository(session).get_or_create(i, f"m{i}")
            await asyncio.sleep(0)  # let the others interleave inside the transaction
            await session.execute(
                text("UPDATE members SET language = 'fr' WHERE id = :i"), {"i": i}
            )
            await session.commit()

    await asyncio.gather(*(member(i) for i in range(1, 201)))
    await engine.dispose()
    async with sqlite_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(Member)) == 200
        assert await session.scalar(select(func.count()).where(Member.language == "fr")) == 200


async def test_a_savepoint_first_is_inside_the_transaction(
    sqlite_sessions: async_sessionmaker[AsyncSession],
) -> None:
    """pysqlite alone commits a SAVEPOINT that comes first; with the gate, a rollback of the
    outer transaction takes it back."""
    async with sqlite_sessions() as session:
        async with session.begin_nested():
            session.add(Member(id=5, first_name="five", blocked=False, roles=[]))
        await session.rollback()
    async with sqlite_sessions() as session:
        assert await session.get(Member, 5) is None


async def test_the_gate_is_released_by_a_failure(
    sqlite_sessions: async_sessionmaker[AsyncSession],
) -> None:
    duplicate = text(
        "INSERT INTO members (id, first_name, blocked, created_at) VALUES (9, 'b', 0, '2026')"
    )
    with pytest.raises(IntegrityError):
        async with sqlite_sessions() as session:
            session.add(Member(id=9, first_name="a", blocked=False, roles=[]))
            await session.flush()
            await session.execute(duplicate)
    async with asyncio.timeout(5), sqlite_sessions() as session:
        session.add(Member(id=10, first_name="c", blocked=False, roles=[]))
        await session.commit()
    # A session closed without commit or rollback also lets the next writer in.
    async with sqlite_sessions() as session:
        session.add(Member(id=11, first_name="d", blocked=False, roles=[]))
        await session.flush()
    async with asyncio.timeout(5), sqlite_sessions() as session:
        session.add(Member(id=12, first_name="e", blocked=False, roles=[]))
        await session.commit()
        assert await session.get(Member, 11) is None


async def test_dialog_storage_writes_only_changes_and_keeps_them(
    sqlite_sessions: async_sessionmaker[AsyncSession],
) -> None:
    engine = sqlite_sessions.kw["bind"]
    writes: list[str] = []

    def seen(statement: str) -> None:
        if "fsm_records" in statement:
            writes.append(statement)

    event.listen(engine.sync_engine, "before_cursor_execute", lambda _c, _u, sql, *_a: seen(sql))
    Direct.of(engine).trace(seen)  # statements run on the SQLite file directly
    storage = SQLStorage(sqlite_sessions)
    key = StorageKey(bot_id=1, chat_id=2, user_id=2, destiny="aiogd:stack:")
    await storage.set_data(key, {"intents": ["a"], "last_message_id": 3})
    await storage.set_state(key, "Survey:question")
    assert len(writes) == 3  # one read (not cached yet), two upserts
    writes.clear()
    for _ in range(5):  # aiogram-dialog saves the stack at every update, changed or not
        await storage.set_data(key, {"intents": ["a"], "last_message_id": 3})
        assert await storage.get_data(key) == {"intents": ["a"], "last_message_id": 3}
        assert await storage.get_state(key) == "Survey:question"
    assert writes == []
    loaded = await storage.get_data(key)
    loaded["intents"].append("mutated")  # what a caller does to its copy stays there
    assert await storage.get_data(key) == {"intents": ["a"], "last_message_id": 3}
    # A new process (no cache) reads what was written.
    fresh = SQLStorage(sqlite_sessions)
    assert await fresh.get_state(key) == "Survey:question"
    assert await fresh.get_data(key) == {"intents": ["a"], "last_message_id": 3}
    await fresh.set_state(key, None)
    await fresh.set_data(key, {})
    async with sqlite_sessions() as session:
        assert await session.scalar(select(func.count()).select_from(FsmRecord)) == 0


def test_hidden_by_follows_conditions_from_the_file() -> None:
    rehab = C.question("rehab_priority")
    assert rehab is not None
    dependents = [q.id for q in C.questions if q.when and q.when.question == "rehab_priority"]
    assert dependents  # the seed asks victims/authors only after "yes"
    assert hidden_by(C, rehab, ["no"]) == dependents
    assert hidden_by(C, rehab, ["yes"]) == []
    assert hidden_by(C, rehab, []) == dependents
    # Without the joint strategy among the challenges, its axes are not asked (the seed's
    # "si vous estimez utile…").
    assert hidden_by(C, C.questions[0], ["inclusion"]) == ["strategy_axes"]
    assert hidden_by(C, C.questions[0], ["inclusion", "strategy"]) == []


async def test_store_replaces_one_answer_and_drops_hidden_ones(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        await MemberRepository(session).get_or_create(7, "Anne")
        await session.commit()
        service = SurveyService(session, C)
        rehab, focus = C.question("rehab_priority"), C.question("rehab_focus")
        assert rehab is not None and focus is not None
        first = C.questions[0]
        known = await service.save(7, first, ["inclusion", "strategy"], None, NOW, known={})
        known = await service.save(7, rehab, ["yes"], None, NOW, known=known)
        known = await service.save(7, focus, [focus.options[0].id], None, NOW, known=known)
        assert known == (await service.state(7)).answers
        known = await service.save(7, first, ["nuisances"], None, NOW, known=known)
        assert known["challenges"] == StoredAnswer(("nuisances",), None)
        # "No" hides the follow-up question: its answer goes, in the same transaction.
        known = await service.save(7, rehab, ["no"], None, NOW, known=known)
        assert "rehab_focus" not in known
        assert known == (await service.state(7)).answers
        known = await service.clear(7, first, NOW, known=known)
        assert "challenges" not in known and known == (await service.state(7)).answers
        response = await SurveyRepository(session).response(C.id, 7)
        assert response is not None and response.status == "draft"
