"""Transitions happen exactly once: catch-up after downtime, concurrent runs, stale phases."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta
from pathlib import Path

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.config import Settings
from bot.consultation import Role, load_consultation
from bot.context import AppContext
from bot.phases.transitions import run_due
from bot.services import AppServices
from storage.models import Delivery, PhaseTransition
from storage.repositories.members import MemberRepository
from tests.support import (
    DEFAULT_CONSULTATION,
    answer_survey,
    default_document,
    seed_answers,
    with_dates,
    write_document,
)
from tests.test_dialogs import Wired

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


def make_app(tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession], dates: dict) -> Wired:
    path = write_document(tmp_path / "c.yaml", with_dates(default_document(), dates))
    app = AppContext(
        settings=Settings(bot_token=None), consultation=load_consultation(path), clock=lambda: NOW
    )
    return Wired(app, AppServices.create(sessionmaker))


async def add_members(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        repo = MemberRepository(session)
        for i, role, lang in [
            (1, Role.AMBASSADOR, "fr"),
            (2, Role.AMBASSADOR, "nl"),
            (3, Role.OFFICIAL, "en"),
            (4, Role.AMBASSADOR, "en"),
        ]:
            member, _ = await repo.get_or_create(i, f"m{i}")
            await repo.set_language(member, lang)
            await repo.add_role(member, role)
        await answer_survey(session, load_consultation(DEFAULT_CONSULTATION), 4, seed_answers()[0])


async def count(sessionmaker: async_sessionmaker[AsyncSession], topic: str) -> int:
    async with sessionmaker() as session:
        return (
            await session.scalar(
                select(func.count()).select_from(Delivery).where(Delivery.topic.startswith(topic))
            )
            or 0
        )


async def test_catch_up_runs_each_transition_once_in_order(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await add_members(sessionmaker)
    h = timedelta(hours=1)
    # The bot was down while the survey opened, its reminder fell due and it closed;
    # the results phase is open now.
    w = make_app(
        tmp_path,
        sessionmaker,
        {
            "survey": (NOW - 100 * h, NOW - 2 * h),
            "results": (NOW - h, NOW + 10 * h),
            "ideas": (NOW + 11 * h, NOW + 100 * h),
        },
    )
    done = await run_due(w.app, w.services)
    assert done == [
        "survey:open:skipped: phase over",
        "survey:remind:172800:skipped: phase over",
        "survey:close:closed",
        "results:open:results to 4",
    ]
    # One summary (its 📊 and 🌐 buttons) for each of the audience (officials, ambassadors).
    assert await count(sessionmaker, "results:") == 4
    assert await count(sessionmaker, "announce:") == 0
    before = await count(sessionmaker, "")
    assert await run_due(w.app, w.services) == []  # a restart changes nothing
    assert await count(sessionmaker, "") == before


async def test_concurrent_runs_act_once(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await add_members(sessionmaker)
    h = timedelta(hours=1)
    w = make_app(
        tmp_path,
        sessionmaker,
        {
            "survey": (NOW - 10 * h, NOW + 40 * h),  # open, and its 48 h reminder is due
            "results": (NOW + 41 * h, NOW + 50 * h),
            "ideas": (NOW + 51 * h, NOW + 100 * h),
        },
    )
    # Two instances starting at the same moment.
    first, second = await asyncio.gather(run_due(w.app, w.services), run_due(w.app, w.services))
    assert sorted(first + second) == [
        "survey:open:announced to 3",
        "survey:remind:172800:reminded 2",
    ]
    assert await count(sessionmaker, "announce:survey") == 3
    # Member 4 has submitted: reminded are the other two ambassadors only.
    async with sessionmaker() as session:
        reminded = (
            await session.scalars(
                select(Delivery.chat_id).where(Delivery.topic.startswith("remind:"))
            )
        ).all()
        assert sorted(reminded) == [1, 2]
        dutch = await session.scalar(
            select(Delivery.text).where(
                Delivery.chat_id == 2, Delivery.topic.startswith("announce")
            )
        )
        assert dutch is not None and w.app.consultation.phases[0].title["nl"] in dutch
        assert await session.scalar(select(func.count()).select_from(PhaseTransition)) == 2


async def test_changed_dates_replan_without_repeating(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await add_members(sessionmaker)
    h = timedelta(hours=1)
    w = make_app(
        tmp_path,
        sessionmaker,
        {
            "survey": (NOW - 50 * h, NOW + 100 * h),
            "results": (NOW + 101 * h, NOW + 110 * h),
            "ideas": (NOW + 111 * h, NOW + 200 * h),
        },
    )
    assert await run_due(w.app, w.services) == ["survey:open:announced to 3"]
    # The organisers move the survey's end earlier: the reminder is now due, the opening
    # is not repeated.
    w2 = make_app(
        tmp_path,
        sessionmaker,
        {
            "survey": (NOW - 50 * h, NOW + 10 * h),
            "results": (NOW + 11 * h, NOW + 20 * h),
            "ideas": (NOW + 21 * h, NOW + 200 * h),
        },
    )
    assert await run_due(w2.app, w2.services) == ["survey:remind:172800:reminded 2"]
    assert await count(sessionmaker, "announce:survey") == 3
