"""The tap's statements run without the ORM (storage/hot_path/statements.py): what they write is what
SQLAlchemy would write, a transaction means what it says, and writers still take turns."""

from __future__ import annotations

import asyncio
import contextlib
import sqlite3
from collections.abc import AsyncIterator, Callable
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest
from sqlalchemy import bindparam, func, insert, select, update
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.hot_path import statements
from storage.hot_path.sqlite_driver import BUSY_MESSAGES
from storage.hot_path.statements import ASYNCPG_POOL_SIZE, Direct
from storage.models import Member, Response
from storage.repositories.members import MemberRepository

NOW = datetime(2020, 5, 10, 12, 30, 15, 123456, tzinfo=UTC)
ADD_MEMBER = insert(Member.__table__).values(
    id=bindparam("id"), first_name=bindparam("name"), blocked=False, created_at=bindparam("at")
)
ADD_RESPONSE = insert(Response.__table__).values(
    consultation_id="c", member_id=bindparam("m"), status="draft", updated_at=bindparam("now")
)


@pytest.fixture
async def sqlite_file(tmp_path: Path) -> async_sessionmaker[AsyncSession]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'd.db'}"
    await upgrade_async(url)
    engine = make_engine(url, sqlite_busy_timeout=5)
    yield make_sessionmaker(engine)
    await engine.dispose()


def _direct(sessions: async_sessionmaker[AsyncSession]) -> Direct:
    return Direct.of(sessions.kw["bind"])


async def test_a_file_runs_on_sqlite_directly_and_reads_back_through_sqlalchemy(
    sessionmaker: async_sessionmaker[AsyncSession], database_url: str
) -> None:
    direct = _direct(sessionmaker)
    assert (direct.database is not None) == database_url.startswith("sqlite")
    async with direct.writing() as db:
        await db.run(
            ADD_MEMBER, [{"id": 1, "name": "Anne", "at": NOW}, {"id": 2, "name": "B", "at": NOW}]
        )
        await db.run(ADD_RESPONSE, {"m": 1, "now": NOW})
    async with sessionmaker() as session:
        # Dates and booleans converted as SQLAlchemy itself does: the ORM reads them back.
        anne = await session.get(Member, 1)
        assert anne is not None and anne.created_at == NOW and anne.blocked is False
        response = await session.scalar(select(Response).where(Response.member_id == 1))
        assert response is not None
        assert (response.status, response.updated_at) == ("draft", NOW)  # the fixed value too
    async with direct.reading() as db:
        rows = await db.rows(select(Member.id).order_by(Member.id))
        assert [tuple(row) for row in rows] == [(1,), (2,)]


async def test_a_failing_block_stores_nothing_and_the_next_one_works(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    direct = _direct(sessionmaker)
    with pytest.raises(RuntimeError):
        async with direct.writing() as db:
            await db.run(ADD_MEMBER, {"id": 1, "name": "Anne", "at": NOW})
            raise RuntimeError("the survey closed meanwhile")
    with pytest.raises(Exception, match=r"(?i)unique") as refused:
        async with direct.writing() as db:
            await db.run(ADD_MEMBER, {"id": 2, "name": "B", "at": NOW})
            await db.run(ADD_MEMBER, {"id": 2, "name": "B again", "at": NOW})
    assert "Integrity" in type(refused.value).__name__ or "Unique" in type(refused.value).__name__
    async with direct.writing() as db:
        await db.run(ADD_MEMBER, {"id": 3, "name": "C", "at": NOW})
    async with direct.reading() as db:
        assert [tuple(row) for row in await db.rows(select(Member.id))] == [(3,)]


async def test_a_disposed_engine_closes_its_connections_and_works_again(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    engine = sessionmaker.kw["bind"]
    direct = _direct(sessionmaker)
    async with direct.writing() as db:
        await db.run(ADD_MEMBER, {"id": 1, "name": "Anne", "at": NOW})
    await engine.dispose()
    async with direct.reading() as db:
        assert [tuple(row) for row in await db.rows(select(Member.first_name))] == [("Anne",)]


async def test_a_default_sqlalchemy_would_fill_in_must_be_given(
    sqlite_file: async_sessionmaker[AsyncSession],
) -> None:
    """No column silently NULL: SQLAlchemy fills Python-side defaults in at execution, the
    direct path refuses instead."""
    direct = _direct(sqlite_file)
    no_date = insert(Member.__table__).values(id=bindparam("id"), first_name="x", blocked=False)
    with pytest.raises(KeyError, match="created_at"):
        async with direct.writing() as db:
            await db.run(no_date, {"id": 1})
    expanding = select(Member.id).where(Member.id.in_(bindparam("ids", expanding=True)))
    with pytest.raises(ValueError, match="expanding"):
        async with direct.reading() as db:
            await db.rows(expanding, {"ids": [1]})


async def test_direct_writers_wait_for_a_session_that_writes(
    sqlite_file: async_sessionmaker[AsyncSession], monkeypatch: pytest.MonkeyPatch
) -> None:
    direct = _direct(sqlite_file)
    order: list[str] = []
    at_gate = asyncio.Event()
    holding = direct.gate.holding

    @contextlib.asynccontextmanager
    async def noted() -> AsyncIterator[None]:
        at_gate.set()  # nothing awaits between here and the gate's lock
        async with holding():
            yield

    monkeypatch.setattr(direct.gate, "holding", noted)
    async with sqlite_file() as session:
        await session.execute(ADD_MEMBER, {"id": 1, "name": "Anne", "at": NOW})

        async def direct_write() -> None:
            async with direct.writing() as db:
                await db.run(update(Member).values(first_name="changed by direct"))
            order.append("direct")

        writer = asyncio.create_task(direct_write())
        await at_gate.wait()
        assert direct.gate.lock.locked() and not writer.done()  # the session holds the gate
        order.append("session")
        await session.commit()
    await asyncio.wait_for(writer, 5)
    assert order == ["session", "direct"]
    async with sqlite_file() as session:
        assert (await session.get(Member, 1)).first_name == "changed by direct"  # type: ignore[union-attr]


async def test_another_process_holding_the_file_is_waited_for(
    sqlite_file: async_sessionmaker[AsyncSession], tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    other = sqlite3.connect(tmp_path / "d.db", isolation_level=None)
    other.execute("BEGIN IMMEDIATE")
    direct = _direct(sqlite_file)
    refused = asyncio.Event()
    retry_busy = statements.retry_busy

    async def noted(call: Callable[[], Any], busy_timeout: float) -> Any:
        def attempt() -> Any:
            try:
                return call()
            except sqlite3.OperationalError as exc:
                if str(exc).startswith(BUSY_MESSAGES):
                    refused.set()  # "database is locked": the writer now waits and retries
                raise

        return await retry_busy(attempt, busy_timeout)

    monkeypatch.setattr(statements, "retry_busy", noted)

    async def direct_write() -> None:
        async with direct.writing() as db:
            await db.run(ADD_MEMBER, {"id": 1, "name": "Anne", "at": NOW})

    writer = asyncio.create_task(direct_write())
    await asyncio.wait_for(refused.wait(), 30)
    assert not writer.done()
    other.execute("COMMIT")
    other.close()
    await asyncio.wait_for(writer, 5)
    async with direct.reading() as db:
        assert await db.rows(select(Member.first_name)) == [("Anne",)]


async def test_members_are_detached_and_changed_through_the_repository(
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    async with sessionmaker() as session:
        repo = MemberRepository(session)
        anne, created = await repo.get_or_create(7, "Anne")
        assert created and anne.role_names == set()
        assert await repo.add_role(anne, "ambassador")
        assert not await repo.add_role(anne, "ambassador")
        await repo.set_language(anne, "nl")
        assert await repo.load(7) is None  # not committed yet: what every update reads
        await session.commit()
    async with sessionmaker() as session:
        repo = MemberRepository(session)
        loaded = await repo.load(7)
        assert loaded is not None
        assert (loaded.first_name, loaded.language, loaded.blocked) == ("Anne", "nl", False)
        assert loaded.role_names == {"ambassador"}
        again, created = await repo.get_or_create(7, "Anne-Marie")
        assert not created and again.first_name == "Anne-Marie"
        await session.commit()
    async with sessionmaker() as session:
        assert (await MemberRepository(session).load(7)).first_name == "Anne-Marie"  # type: ignore[union-attr]


async def test_a_starting_bot_opens_every_postgresql_connection_ahead_of_the_crowd(
    postgres_url: str,
) -> None:
    """`open()` connects the whole asyncpg pool and keeps it: the first burst of taps after
    a start (or after an idle hour) does not wait for connections to be made."""
    engine = make_engine(postgres_url)
    try:
        direct = Direct.of(engine)
        await direct.open()
        pool = await direct._asyncpg_pool()
        assert pool.get_size() == ASYNCPG_POOL_SIZE
        assert pool.get_idle_size() == ASYNCPG_POOL_SIZE
        async with direct.reading() as db:
            assert [tuple(r) for r in await db.rows(select(Member.id))] == []
        assert pool.get_size() == ASYNCPG_POOL_SIZE
    finally:
        await engine.dispose()


async def test_a_sqlite_file_has_nothing_to_open(
    sqlite_file: async_sessionmaker[AsyncSession],
) -> None:
    direct = _direct(sqlite_file)
    await direct.open()
    async with direct.reading() as db:
        assert list(await db.rows(select(Member.id))) == []
    with pytest.raises(RuntimeError):
        direct.autocommit()


async def test_a_hot_path_statement_is_one_round_trip_and_a_failed_block_still_rolls_back(
    postgres_url: str,
) -> None:
    """asyncpg's pool resets a connection it gets back with a query of its own (advisory
    locks, cursors, LISTEN, settings): one more round trip per tap for state the hot path never
    sets. Only an open transaction needs undoing, and still is."""
    engine = make_engine(postgres_url)
    try:
        direct = Direct.of(engine)
        await direct.open()
        pool = await direct._asyncpg_pool()
        sent: list[str] = []
        for conn in pool.idle:  # every connection of the pool logs what it sends
            conn.add_query_logger(lambda record: sent.append(record.query))
        for _ in range(3):
            async with direct.reading() as db:
                await db.rows(select(Member.id))
        await asyncio.sleep(0)  # asyncpg calls query loggers on the loop's next turn
        assert len(sent) == 3, sent
        assert not [q for q in sent if "RESET" in q.upper() or "UNLISTEN" in q.upper()]
        with pytest.raises(RuntimeError):
            async with direct.writing() as db:
                await db.run(ADD_MEMBER, {"id": 41, "name": "Rolled back", "at": NOW})
                raise RuntimeError("the survey closed meanwhile")
        async with direct.reading() as db:
            assert [tuple(r) for r in await db.rows(select(Member.id))] == []
    finally:
        await engine.dispose()


async def test_background_reads_on_postgresql_take_one_core(postgres_url: str) -> None:
    """A tally run as three processes took every core of the bot's machine for half a second
    (bench/results_load.py): long reads (`reading_aside`, an export's engine) run without
    parallel workers, and the pooled connection they used is back to the server's setting."""
    workers = select(func.current_setting("max_parallel_workers_per_gather"))
    engine = make_engine(postgres_url)
    export_engine = make_engine(postgres_url, background=True)
    try:
        direct = Direct.of(engine)
        async with direct.reading() as db:
            default = (await db.rows(workers))[0][0]
        assert default != "0"  # the server's own (2 unless configured): parallel reads allowed
        async with direct.reading_aside() as db:
            assert (await db.rows(workers))[0][0] == "0"
            assert (await db.rows(workers))[0][0] == "0"  # for each of the tally's statements
        pool = await direct._asyncpg_pool()
        assert pool.get_size() == 1  # the same connection served both
        async with direct.reading() as db:
            assert (await db.rows(workers))[0][0] == default
        async with export_engine.connect() as conn:
            assert (await conn.execute(workers)).scalar_one() == "0"
        async with engine.connect() as conn:
            assert (await conn.execute(workers)).scalar_one() == default
    finally:
        await engine.dispose()
        await export_engine.dispose()


async def test_hot_path_connections_ended_by_the_server_are_made_again(postgres_url: str) -> None:
    """A database restart ends every connection: the next taps get new ones, none fails."""
    engine = make_engine(postgres_url)
    killer = make_engine(postgres_url)
    try:
        direct = Direct.of(engine)
        await direct.open()
        pool = await direct._asyncpg_pool()
        old = list(pool.idle)
        pids = [conn.get_server_pid() for conn in old]
        ended = asyncio.Semaphore(0)
        for conn in old:
            conn.add_termination_listener(lambda _conn: ended.release())
        async with killer.connect() as conn:
            for pid in pids:
                await conn.execute(select(func.pg_terminate_backend(pid)))
        async with asyncio.timeout(10):  # every one of them seen ended
            for _ in old:
                await ended.acquire()
        assert all(c.is_closed() for c in old)

        async def read() -> int:
            async with direct.reading() as db:
                return len(await db.rows(select(Member.id)))

        assert await asyncio.gather(*(read() for _ in range(30))) == [0] * 30
        assert pool.get_size() <= ASYNCPG_POOL_SIZE
        assert not set(pids) & {c.get_server_pid() for c in pool.idle}
    finally:
        await engine.dispose()
        await killer.dispose()


async def test_a_refused_statement_keeps_its_connection_a_cancelled_one_does_not(
    postgres_url: str,
) -> None:
    import asyncpg

    engine = make_engine(postgres_url)
    try:
        direct = Direct.of(engine)
        direct.limit(1, 0.3)  # one connection: every block reuses it or makes a new one
        async with direct.reading() as db:
            first = (await db.rows(select(func.pg_backend_pid())))[0][0]
        with pytest.raises(asyncpg.DivisionByZeroError):
            async with direct.reading() as db:
                await db.rows(select(1 / bindparam("zero")), {"zero": 0})
        async with direct.reading() as db:
            assert (await db.rows(select(func.pg_backend_pid())))[0][0] == first

        started = asyncio.Event()

        async def slow() -> None:
            async with direct.reading() as db:
                started.set()
                await db.rows(select(func.pg_sleep(5)))

        task = asyncio.create_task(slow())
        await started.wait()
        # the only connection is taken: a caller past the size waits, then gives up clearly
        with pytest.raises(statements.PoolExhausted):
            async with direct.reading() as db:
                pass
        await asyncio.sleep(0.05)
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        async with asyncio.timeout(2):  # not behind the cancelled pg_sleep(5)
            async with direct.reading() as db:
                again = (await db.rows(select(func.pg_backend_pid())))[0][0]
        assert again != first  # mid-query when cancelled: closed, a new one made
        pool = await direct._asyncpg_pool()
        assert pool.get_size() == 1
    finally:
        await engine.dispose()
