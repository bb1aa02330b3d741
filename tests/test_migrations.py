"""SQLite transactions that mean what they say, and migrations that are safe to run: in one
transaction, one process at a time, after a copy of the SQLite file."""

from __future__ import annotations

import asyncio
import os
import shutil
import sqlite3
import subprocess
import sys
import threading
import time
from collections.abc import Iterator
from pathlib import Path

import pytest
from sqlalchemy import select, text
from sqlalchemy.engine import make_url
from sqlalchemy.ext.asyncio import create_async_engine

from storage.db import MIGRATIONS, make_engine, make_sessionmaker, upgrade, upgrade_async
from storage.models import Member
from tests.support import POSTGRES_URL, REPO, unique_name

FAILING = '''"""A migration that fails half-way (test only)."""

import sqlalchemy as sa
from alembic import op

revision = "9999"
down_revision = "{head}"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table("half_done", sa.Column("id", sa.Integer, primary_key=True))
    op.add_column("members", sa.Column("nickname", sa.String(32)))
    op.execute("INSERT INTO no_such_table VALUES (1)")


def downgrade() -> None:
    pass
'''


def head() -> str:
    from alembic.script import ScriptDirectory

    from storage.db import alembic_config

    return ScriptDirectory.from_config(alembic_config("sqlite://")).get_current_head() or ""


def query(path: Path, sql: str) -> list[tuple[object, ...]]:
    conn = sqlite3.connect(path)
    try:
        return conn.execute(sql).fetchall()
    finally:
        conn.close()


def sqlite_revision(path: Path) -> str | None:
    rows = query(path, "SELECT version_num FROM alembic_version")
    return str(rows[0][0]) if rows else None


def sqlite_tables(path: Path) -> set[str]:
    return {str(r[0]) for r in query(path, "SELECT name FROM sqlite_master WHERE type='table'")}


@pytest.fixture
def failing_migrations(tmp_path: Path) -> Path:
    """The real migrations plus one that fails after creating a table and adding a column."""
    copy = tmp_path / "migrations"
    shutil.copytree(MIGRATIONS, copy, ignore=shutil.ignore_patterns("__pycache__"))
    (copy / "versions" / "9999_fails.py").write_text(FAILING.format(head=head()))
    return copy


# ------------------------------------------------------------------ explicit BEGIN


async def test_savepoint_as_first_write_is_rolled_back_with_its_transaction(
    tmp_path: Path,
) -> None:
    # pysqlite alone emits no BEGIN before a SAVEPOINT: the savepoint's RELEASE commits at once.
    url = f"sqlite+aiosqlite:///{tmp_path / 'tx.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            async with session.begin_nested():
                session.add(Member(id=1, first_name="Anne"))
            async with session.begin_nested():
                session.add(Member(id=2, first_name="Bob"))
            await session.rollback()
        async with sessionmaker() as session:
            assert (await session.scalars(select(Member.id))).all() == []
            async with session.begin_nested():
                session.add(Member(id=3, first_name="Chloé"))
            await session.commit()
        async with sessionmaker() as session:
            assert (await session.scalars(select(Member.id))).all() == [3]
    finally:
        await engine.dispose()


async def test_a_read_then_a_write_survive_another_connection_committing_between(
    tmp_path: Path,
) -> None:
    # A BEGIN at the first read would pin a snapshot SQLite cannot turn into a write once
    # another connection committed ("database is locked" at once): the BEGIN waits for the
    # first write, as the driver did, but now covers savepoints too.
    url = f"sqlite+aiosqlite:///{tmp_path / 'tx.db'}"
    await upgrade_async(url)
    engine = make_engine(url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as reader, sessionmaker() as writer:
            assert (await reader.scalars(select(Member.id))).all() == []
            writer.add(Member(id=1, first_name="Anne"))
            await writer.commit()
            async with reader.begin_nested():
                reader.add(Member(id=2, first_name="Bob"))
            reader.add(Member(id=3, first_name="Chloé"))
            await reader.commit()
        async with sessionmaker() as session:
            assert (await session.scalars(select(Member.id).order_by(Member.id))).all() == [
                1,
                2,
                3,
            ]
    finally:
        await engine.dispose()


# ------------------------------------------------------------------ migrations


def test_failing_migration_leaves_the_previous_revision_intact(
    tmp_path: Path, failing_migrations: Path
) -> None:
    db = tmp_path / "app.db"
    url = f"sqlite+aiosqlite:///{db}"
    upgrade(url)
    with pytest.raises(Exception, match="no_such_table"):
        upgrade(url, migrations=failing_migrations)
    assert sqlite_revision(db) == head()
    assert "half_done" not in sqlite_tables(db)
    columns = {r[1] for r in query(db, "PRAGMA table_info(members)")}
    assert "nickname" not in columns
    upgrade(url)  # the database still opens and upgrades
    assert sqlite_revision(db) == head()


def test_a_fresh_database_that_fails_to_migrate_is_left_empty(
    tmp_path: Path, failing_migrations: Path
) -> None:
    db = tmp_path / "fresh.db"
    with pytest.raises(Exception, match="no_such_table"):
        upgrade(f"sqlite+aiosqlite:///{db}", migrations=failing_migrations)
    assert sqlite_tables(db) <= {"alembic_version"}
    upgrade(f"sqlite+aiosqlite:///{db}")
    assert sqlite_revision(db) == head()


def test_the_sqlite_file_is_copied_before_an_upgrade_that_applies_something(
    tmp_path: Path,
) -> None:
    db = tmp_path / "data" / "app.db"
    url = f"sqlite+aiosqlite:///{db}"
    upgrade(url, "0001")
    conn = sqlite3.connect(db)
    conn.execute(
        "INSERT INTO members (id, first_name, blocked, created_at) VALUES (5, 'Anne', 0, '2026-01-01')"
    )
    conn.commit()
    conn.close()
    upgrade(url)
    copy = db.parent / "app.db.bak-0001"
    assert copy.exists()
    assert sqlite_revision(copy) == "0001"
    assert query(copy, "SELECT first_name FROM members") == [("Anne",)]
    # Nothing to apply: no new copy; a fresh database: nothing to copy.
    upgrade(url)
    assert sorted(p.name for p in db.parent.iterdir() if ".bak-" in p.name) == [copy.name]
    fresh = tmp_path / "fresh.db"
    upgrade(f"sqlite+aiosqlite:///{fresh}")
    assert not [p for p in tmp_path.iterdir() if p.name.startswith("fresh.db.bak")]


# Imported (the slow part) before saying it is ready, then all start at the go file together.
UPGRADER = """
import sys, time
from pathlib import Path
from storage.db import upgrade
Path(sys.argv[3]).touch()
go = Path(sys.argv[2])
while not go.exists():
    time.sleep(0.005)
upgrade(sys.argv[1])
"""


def _upgrade_together(url: str, tmp_path: Path, n: int = 3) -> list[str]:
    """`n` processes (instances starting together) upgrade at once; their failures."""
    go = tmp_path / "go"
    ready = [tmp_path / f"ready-{i}" for i in range(n)]
    env = {**os.environ, "PYTHONPATH": str(REPO)}
    procs = [
        subprocess.Popen(
            [sys.executable, "-c", UPGRADER, url, str(go), str(flag)],
            env=env,
            stdout=subprocess.PIPE,
            stderr=subprocess.PIPE,
            text=True,
        )
        for flag in ready
    ]
    # Every one imported and waiting (however slow the machine), or one already failed.
    deadline = time.monotonic() + 120
    while not all(flag.exists() for flag in ready):
        if any(proc.poll() is not None for proc in procs):
            break  # its error is reported below
        assert time.monotonic() < deadline, "the upgraders did not start"
        time.sleep(0.01)
    go.touch()
    failures = []
    for proc in procs:
        _out, err = proc.communicate(timeout=120)
        if proc.returncode != 0:
            failures.append(err.strip().splitlines()[-1] if err.strip() else str(proc.returncode))
    return failures


def test_threads_upgrading_at_once_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "threads.db"
    errors: list[BaseException] = []
    barrier = threading.Barrier(3)

    def run() -> None:
        barrier.wait()
        try:
            upgrade(f"sqlite+aiosqlite:///{db}")
        except BaseException as exc:
            errors.append(exc)

    threads = [threading.Thread(target=run) for _ in range(3)]
    for t in threads:
        t.start()
    for t in threads:
        t.join(60)
    assert errors == []
    assert sqlite_revision(db) == head()


def test_instances_upgrading_the_same_sqlite_file_at_once_all_succeed(tmp_path: Path) -> None:
    db = tmp_path / "together.db"
    assert _upgrade_together(f"sqlite+aiosqlite:///{db}", tmp_path) == []
    assert sqlite_revision(db) == head()


@pytest.fixture
def empty_postgres() -> Iterator[str]:
    name = unique_name("cbm")

    async def admin(sql: str) -> None:
        engine = create_async_engine(POSTGRES_URL, isolation_level="AUTOCOMMIT")
        try:
            async with engine.connect() as conn:
                await conn.execute(text(sql))
        finally:
            await engine.dispose()

    try:
        asyncio.run(admin(f'CREATE DATABASE "{name}"'))
    except OSError as exc:
        pytest.fail(f"PostgreSQL is required and unreachable at {POSTGRES_URL}: {exc}")
    yield make_url(POSTGRES_URL).set(database=name).render_as_string(hide_password=False)
    asyncio.run(admin(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))


def test_instances_upgrading_the_same_postgres_database_at_once_all_succeed(
    empty_postgres: str, tmp_path: Path
) -> None:
    assert _upgrade_together(empty_postgres, tmp_path) == []

    async def revision() -> str:
        engine = create_async_engine(empty_postgres)
        try:
            async with engine.connect() as conn:
                return (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar_one()
        finally:
            await engine.dispose()

    assert asyncio.run(revision()) == head()


def test_failing_migration_on_postgres_leaves_the_previous_revision(
    empty_postgres: str, failing_migrations: Path
) -> None:
    upgrade(empty_postgres)
    with pytest.raises(Exception, match="no_such_table"):
        upgrade(empty_postgres, migrations=failing_migrations)

    async def state() -> tuple[str, bool]:
        engine = create_async_engine(empty_postgres)
        try:
            async with engine.connect() as conn:
                version = (
                    await conn.execute(text("SELECT version_num FROM alembic_version"))
                ).scalar_one()
                table = await conn.scalar(text("SELECT to_regclass('half_done') IS NOT NULL"))
                return version, bool(table)
        finally:
            await engine.dispose()

    assert asyncio.run(state()) == (head(), False)
