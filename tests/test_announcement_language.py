"""A phase's announcement is entirely in each member's language (found in the playground: the
Dutch and English announcements said “c’est ouvert, jusqu’au …” in French)."""

from __future__ import annotations

from datetime import timedelta
from pathlib import Path

from sqlalchemy import select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.phases.transitions import run_due
from storage.models import Delivery
from tests.test_transitions import NOW, add_members, make_app


async def test_the_survey_announcement_speaks_each_members_language(
    tmp_path: Path, sessionmaker: async_sessionmaker[AsyncSession]
) -> None:
    await add_members(sessionmaker)  # ambassadors in fr, nl and en
    h = timedelta(hours=1)
    w = make_app(
        tmp_path,
        sessionmaker,
        {
            "survey": (NOW - h, NOW + 100 * h),
            "results": (NOW + 101 * h, NOW + 120 * h),
            "ideas": (NOW + 121 * h, NOW + 300 * h),
        },
    )
    await run_due(w.app, w.services, NOW)
    async with sessionmaker() as session:
        texts = dict(
            (
                await session.execute(
                    select(Delivery.chat_id, Delivery.text).where(
                        Delivery.topic == "announce:survey"
                    )
                )
            ).all()
        )
    assert "c’est ouvert" in texts[1]
    assert "c’est ouvert" not in texts[2] and "Touchez" not in texts[2], texts[2]
    assert "c’est ouvert" not in texts[4] and "Touchez" not in texts[4], texts[4]
