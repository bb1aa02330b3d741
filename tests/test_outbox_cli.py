"""`consultbot outbox failed` lists what failed for good; `consultbot outbox retry` re-queues."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime
from pathlib import Path

from sqlalchemy import select

from storage.db import make_engine, make_sessionmaker, upgrade
from storage.models import Delivery
from storage.repositories.outbox import NewDelivery, OutboxRepository
from tests.test_cli import assert_clean_failure, consultbot


async def _seed(url: str) -> dict[str, int]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            repo = OutboxRepository(session)
            await repo.enqueue(
                [
                    NewDelivery(f"k{i}", "results:results", 100 + i, text=f"Résultats {i}")
                    for i in range(3)
                ],
                datetime.now(UTC),
            )
            ids = {}
            for i in range(3):
                row = await repo.delivery(f"k{i}")
                assert row is not None
                ids[f"k{i}"] = row.id
            for key in ("k0", "k1"):
                await repo.settle(ids[key], status="failed", error="Bad Request: chat not found")
            await session.commit()
            return ids
    finally:
        await engine.dispose()


async def _statuses(url: str) -> dict[str, tuple[str, int]]:
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            rows = await session.execute(
                select(Delivery.dedupe_key, Delivery.status, Delivery.attempts)
            )
            return {key: (status, attempts) for key, status, attempts in rows}
    finally:
        await engine.dispose()


def test_outbox_failed_and_retry(tmp_path: Path) -> None:
    url = f"sqlite+aiosqlite:///{tmp_path / 'db.sqlite'}"
    upgrade(url)
    ids = asyncio.run(_seed(url))

    listed = consultbot(["outbox", "failed"], tmp_path, DATABASE_URL=url)
    assert listed.returncode == 0, listed.stderr
    lines = listed.stdout.splitlines()
    assert lines[0] == "2 failed message(s), newest first:"
    assert lines[1].startswith(f"{ids['k1']}\t") and lines[2].startswith(f"{ids['k0']}\t")
    assert "results:results\tchat 100\tBad Request: chat not found\tRésultats 0" in lines[2]

    nothing = consultbot(["outbox", "retry"], tmp_path, DATABASE_URL=url)
    assert_clean_failure(nothing, "give the ids of failed messages, or --all")

    one = consultbot(["outbox", "retry", str(ids["k0"]), "999"], tmp_path, DATABASE_URL=url)
    assert one.returncode == 0, one.stderr
    assert one.stdout.startswith("1 message(s) queued again")
    assert asyncio.run(_statuses(url)) == {
        "k0": ("pending", 0),
        "k1": ("failed", 0),
        "k2": ("pending", 0),
    }
    # Re-queueing everything asks first; without a terminal it wants --yes, and changes nothing.
    unasked = consultbot(["outbox", "retry", "--all"], tmp_path, DATABASE_URL=url)
    assert_clean_failure(unasked, "add --yes")
    assert asyncio.run(_statuses(url))["k1"] == ("failed", 0)
    rest = consultbot(["outbox", "retry", "--all", "--yes"], tmp_path, DATABASE_URL=url)
    assert rest.returncode == 0 and rest.stdout.startswith("1 message(s) queued again")
    empty = consultbot(["outbox", "failed"], tmp_path, DATABASE_URL=url)
    assert empty.stdout.strip() == "no failed messages"
