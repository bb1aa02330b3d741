"""One setting bounds an instance's PostgreSQL connections, all pools together, and a wait for
a connection ends with a clear logged error instead of a hang."""

from __future__ import annotations

import asyncio
import logging

import pytest
from sqlalchemy import text

from bot.app import create_engine, pool_budget
from bot.config import ConfigError, load_settings
from storage.db import make_engine
from storage.hot_path.statements import Direct
from storage.pools import PoolBudget, PoolExhausted

PG = "postgresql+asyncpg://consultbot@127.0.0.1:5432/consultbot"


@pytest.mark.parametrize("total", range(8, 121))
@pytest.mark.parametrize("dialogs", [False, True])
def test_the_parts_add_up_to_the_setting(total: int, dialogs: bool) -> None:
    budget = PoolBudget.split(total, 10, dialogs_in_database=dialogs)
    assert budget.main + budget.hot_path + budget.dialogs + budget.outbox == total
    assert min(budget.main, budget.hot_path, budget.outbox) >= 2
    assert (budget.dialogs >= 2) if dialogs else budget.dialogs == 0


def test_the_default_budget_and_the_engines_built_from_it() -> None:
    settings = load_settings(database_url=PG, redis_url="redis://127.0.0.1:6379/0")
    budget = pool_budget(settings)
    assert budget is not None and (budget.total, budget.main, budget.hot_path) == (40, 25, 10)
    assert (budget.dialogs, budget.outbox) == (0, 5)
    main, outbox = (
        create_engine(settings, budget, "main"),
        create_engine(settings, budget, "outbox"),
    )
    # Fixed sizes, no overflow: what the README's sum counts is all they can open.
    assert (main.pool.size(), main.pool._max_overflow) == (25, 0)  # type: ignore[attr-defined]
    assert Direct.of(main).pool_size == 10 and Direct.of(main).asyncpg
    assert outbox.pool.size() == 5 and not Direct.of(outbox).asyncpg  # type: ignore[attr-defined]

    # Without Redis the dialogs take their share from the updates' pool.
    no_redis = load_settings(database_url=PG, database_max_connections=40)
    budget = pool_budget(no_redis)
    assert budget is not None and (budget.main, budget.dialogs) == (15, 10)
    dialogs = create_engine(no_redis, budget, "dialogs")
    assert dialogs.pool.size() + Direct.of(dialogs).pool_size == 10  # type: ignore[attr-defined]
    assert pool_budget(load_settings(database_url="sqlite+aiosqlite:///x.db")) is None
    with pytest.raises(ConfigError, match="DATABASE_MAX_CONNECTIONS"):
        load_settings(database_max_connections=4)


async def test_a_full_pool_gives_up_with_a_clear_log(
    postgres_url: str, caplog: pytest.LogCaptureFixture
) -> None:
    budget = PoolBudget.split(8, 0.3, dialogs_in_database=False)
    engine = make_engine(postgres_url, **budget.engine_options("main", 1))
    direct = Direct.of(engine)
    direct.limit(1, 0.3)
    try:
        async with engine.connect() as held:
            await held.execute(text("SELECT 1"))
            with caplog.at_level(logging.ERROR), pytest.raises(PoolExhausted):
                async with asyncio.timeout(10):  # a hang fails here instead
                    async with engine.connect() as conn:
                        await conn.execute(text("SELECT 1"))
        assert "no free PostgreSQL connection in the main pool (1 connections" in caplog.text
        assert "DATABASE_MAX_CONNECTIONS" in caplog.text

        caplog.clear()
        async with direct.reading():
            with caplog.at_level(logging.ERROR), pytest.raises(PoolExhausted):
                async with asyncio.timeout(10), direct.reading():
                    pass
        assert "no free PostgreSQL connection in the hot-path (asyncpg) pool" in caplog.text
        async with engine.connect() as conn:  # freed again: the next one gets through
            assert await conn.scalar(text("SELECT 1")) == 1
    finally:
        await engine.dispose()
