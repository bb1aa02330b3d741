"""Fixtures: fresh migrated databases on SQLite and PostgreSQL (PostgreSQL must be up)."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from storage.db import make_engine, make_sessionmaker, upgrade
from tests.support import POSTGRES_URL, postgres_database, unique_name


def _off_loop(function: Callable[[], object]) -> object:
    """Run blocking set-up that starts its own event loop, even from an async test."""
    with ThreadPoolExecutor(max_workers=1) as pool:
        return pool.submit(function).result()


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A new, migrated PostgreSQL database; fails (not skips) when the server is down."""
    name = unique_name("cbt")
    try:
        url = str(_off_loop(lambda: asyncio.run(postgres_database(name, create=True))))
    except OSError as exc:
        pytest.fail(
            f"PostgreSQL is required for this test and unreachable at {POSTGRES_URL}: {exc}"
        )
    _off_loop(lambda: upgrade(url))
    yield url
    _off_loop(lambda: asyncio.run(postgres_database(name, create=False)))


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    url = f"sqlite+aiosqlite:///{tmp_path / 'test.db'}"
    upgrade(url)
    return url


@pytest.fixture(params=["sqlite", "postgresql"])
def database_url(request: pytest.FixtureRequest) -> str:
    return request.getfixturevalue("sqlite_url" if request.param == "sqlite" else "postgres_url")


@pytest.fixture
async def sessionmaker(database_url: str) -> AsyncIterator[async_sessionmaker[AsyncSession]]:
    engine = make_engine(database_url)
    yield make_sessionmaker(engine)
    await engine.dispose()
