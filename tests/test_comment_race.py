"""Two first comments on one idea at once, on PostgreSQL: both kept, one notification."""

from __future__ import annotations

import asyncio
from pathlib import Path

from sqlalchemy import func, select

from storage.db import make_engine, make_sessionmaker
from storage.models import Comment, NotificationState
from storage.repositories.members import MemberRepository
from tests.test_dialogs import Clock
from tests.test_ideas_dialogs import NOW, add_member, deliveries, make_app, seed_idea


async def test_two_first_comments_at_once_keep_both_and_notify_once(
    tmp_path: Path, postgres_url: str
) -> None:
    engine = make_engine(postgres_url)
    sessionmaker = make_sessionmaker(engine)
    try:
        w = make_app(tmp_path, sessionmaker, Clock(NOW))
        await add_member(sessionmaker, 7, "Anne")  # every idea's author
        for member_id in (8, 9):
            await add_member(sessionmaker, member_id, f"M{member_id}")
        ideas = [await seed_idea(w, 7, f"Idée {i}") for i in range(8)]

        async def comment(member_id: int, idea_id: int) -> None:
            async with sessionmaker() as session:
                service = w.use(session).ideas
                member = await MemberRepository(session).get(member_id)
                idea = await service.repo.get(idea_id)
                assert member is not None and idea is not None
                await service.comment(member, idea, f"Avis de {member_id}", None)

        for idea_id in ideas:
            # Neither has a notification row yet: both would insert one.
            await asyncio.gather(comment(8, idea_id), comment(9, idea_id))
        async with sessionmaker() as session:
            for idea_id in ideas:
                count = select(func.count()).select_from(Comment).where(Comment.idea_id == idea_id)
                assert await session.scalar(count) == 2, idea_id
                state = await session.get(NotificationState, (7, idea_id))
                # One told at once, the other held back for the grouped notification.
                assert state is not None and state.pending_comments == 1, idea_id
        assert len(await deliveries(sessionmaker, "notification", 7)) == len(ideas)
    finally:
        await engine.dispose()
