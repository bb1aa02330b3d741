"""Ideas, supports, comments, reports and notification grouping."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy import delete, func, select, update
from sqlalchemy.exc import IntegrityError
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Comment, Idea, NotificationState, Report, Support
from storage.upsert import upsert_for


class IdeaRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        consultation_id: str,
        project_id: str,
        author_id: int,
        author_name: str,
        title: str,
        text: str,
        now: datetime,
        commune: str | None = None,
    ) -> Idea:
        idea = Idea(
            consultation_id=consultation_id,
            project_id=project_id,
            author_id=author_id,
            author_name=author_name[:128],
            title=title,
            text=text,
            status="pending",
            supports=0,
            created_at=now,
            commune=commune,
        )
        self.session.add(idea)
        await self.session.flush()
        return idea

    async def get(self, idea_id: int) -> Idea | None:
        return await self.session.get(Idea, idea_id, populate_existing=True)

    async def approved(
        self,
        consultation_id: str,
        project_id: str,
        by_support: bool,
        offset: int,
        limit: int,
        commune: str | None = None,
    ) -> tuple[list[Idea], int]:
        """A page of a project's approved ideas and their number; with `commune`, only the
        ideas from that commune."""
        where = (
            (Idea.consultation_id == consultation_id)
            & (Idea.project_id == project_id)
            & (Idea.status == "approved")
        )
        if commune is not None:
            where &= Idea.commune == commune
        order = (Idea.supports.desc(), Idea.id.desc()) if by_support else (Idea.id.desc(),)
        items = await self.session.scalars(
            select(Idea).where(where).order_by(*order).offset(offset).limit(limit)
        )
        total = await self.session.scalar(select(func.count()).select_from(Idea).where(where))
        return list(items.all()), total or 0

    async def approved_texts(
        self, consultation_id: str, project_id: str
    ) -> list[tuple[int, str, str]]:
        rows = await self.session.execute(
            select(Idea.id, Idea.title, Idea.text).where(
                Idea.consultation_id == consultation_id,
                Idea.project_id == project_id,
                Idea.status == "approved",
            )
        )
        return [(i, t, x) for i, t, x in rows]

    async def by_author(self, consultation_id: str, author_id: int) -> list[Idea]:
        rows = await self.session.scalars(
            select(Idea)
            .where(Idea.consultation_id == consultation_id, Idea.author_id == author_id)
            .order_by(Idea.id.desc())
        )
        return list(rows.all())

    async def pending(self, consultation_id: str) -> list[Idea]:
        rows = await self.session.scalars(
            select(Idea)
            .where(Idea.consultation_id == consultation_id, Idea.status == "pending")
            .order_by(Idea.id)
        )
        return list(rows.all())

    async def decide(
        self,
        idea_id: int,
        status: str,
        by: int,
        by_name: str,
        reason: str | None,
        now: datetime,
        from_status: str = "pending",
    ) -> bool:
        """Conditional update: only the first decision on a pending idea wins."""
        result = await self.session.execute(
            update(Idea)
            .where(Idea.id == idea_id, Idea.status == from_status)
            .values(
                status=status,
                decided_by=by,
                decided_by_name=by_name[:128],
                decided_at=now,
                reject_reason=reason,
            )
            .execution_options(synchronize_session=False)
        )
        return (result.rowcount or 0) == 1

    async def withdraw(self, idea_id: int, author_id: int) -> bool:
        result = await self.session.execute(
            update(Idea)
            .where(Idea.id == idea_id, Idea.author_id == author_id, Idea.status == "pending")
            .values(status="withdrawn")
            .execution_options(synchronize_session=False)
        )
        return (result.rowcount or 0) == 1

    async def approved_between(
        self, consultation_id: str, start: datetime, end: datetime
    ) -> list[Idea]:
        rows = await self.session.scalars(
            select(Idea)
            .where(
                Idea.consultation_id == consultation_id,
                Idea.status == "approved",
                Idea.decided_at > start,
                Idea.decided_at <= end,
                Idea.erased_at.is_(None),  # erased by its author: nothing left to tell
            )
            .order_by(Idea.project_id, Idea.id)
        )
        return list(rows.all())

    async def most_supported(self, consultation_id: str, limit: int) -> list[Idea]:
        """The network's most supported approved ideas (at least one support), first approved
        first among equals; erased ones are left out (nothing left to show)."""
        rows = await self.session.scalars(
            select(Idea)
            .where(
                Idea.consultation_id == consultation_id,
                Idea.status == "approved",
                Idea.supports > 0,
                Idea.erased_at.is_(None),
            )
            .order_by(Idea.supports.desc(), Idea.id)
            .limit(limit)
        )
        return list(rows.all())

    # ---------------------------------------------------------------- supports

    async def has_support(self, idea_id: int, member_id: int) -> bool:
        return await self.session.get(Support, (idea_id, member_id)) is not None

    async def set_support(self, idea_id: int, member_id: int, on: bool, now: datetime) -> bool:
        """Add or remove one member's support; returns whether anything changed."""
        if on:
            try:
                async with self.session.begin_nested():
                    self.session.add(Support(idea_id=idea_id, member_id=member_id, created_at=now))
            except IntegrityError:
                return False
            delta = 1
        else:
            result = await self.session.execute(
                delete(Support).where(Support.idea_id == idea_id, Support.member_id == member_id)
            )
            if (result.rowcount or 0) == 0:
                return False
            delta = -1
        await self.session.execute(
            update(Idea)
            .where(Idea.id == idea_id)
            .values(supports=Idea.supports + delta)
            .execution_options(synchronize_session=False)
        )
        return True

    # ---------------------------------------------------------------- comments

    async def add_comment(
        self,
        idea_id: int,
        author_id: int,
        author_name: str,
        text: str,
        parent_id: int | None,
        now: datetime,
    ) -> Comment:
        comment = Comment(
            idea_id=idea_id,
            author_id=author_id,
            author_name=author_name[:128],
            text=text,
            parent_id=parent_id,
            hidden=False,
            created_at=now,
        )
        self.session.add(comment)
        await self.session.flush()
        return comment

    async def comment(self, comment_id: int) -> Comment | None:
        return await self.session.get(Comment, comment_id, populate_existing=True)

    async def threads(self, idea_id: int) -> list[Comment]:
        """Visible comments, each top-level one followed by its replies, oldest first."""
        rows = list(
            (
                await self.session.scalars(
                    select(Comment)
                    .where(Comment.idea_id == idea_id, Comment.hidden.is_(False))
                    .order_by(Comment.id)
                )
            ).all()
        )
        replies: dict[int, list[Comment]] = {}
        for c in rows:
            if c.parent_id is not None:
                replies.setdefault(c.parent_id, []).append(c)
        ordered = []
        for c in rows:
            if c.parent_id is None:
                ordered.append(c)
                ordered.extend(replies.get(c.id, []))
        return ordered

    async def hide_comment(self, comment_id: int, by_name: str, by: int | None = None) -> bool:
        result = await self.session.execute(
            update(Comment)
            .where(Comment.id == comment_id, Comment.hidden.is_(False))
            .values(hidden=True, hidden_by=by, hidden_by_name=by_name[:128])
            .execution_options(synchronize_session=False)
        )
        return (result.rowcount or 0) == 1

    async def add_report(
        self, target: str, target_id: int, reporter_id: int, now: datetime
    ) -> int | None:
        """The new report's id; None when this member already reported this."""
        report = Report(target=target, target_id=target_id, reporter_id=reporter_id, created_at=now)
        try:
            async with self.session.begin_nested():
                self.session.add(report)
        except IntegrityError:
            return None
        return report.id

    async def _count(self, model: type, *where: object) -> int:
        query = select(func.count()).select_from(model).where(*where)  # type: ignore[arg-type]
        return await self.session.scalar(query) or 0

    # ------------------------------------------------------ batched comment cards

    async def last_carded_at(self) -> datetime | None:
        return await self.session.scalar(select(func.max(Comment.carded_at)))

    async def uncarded_comments(self, limit: int) -> list[tuple[Idea, Comment]]:
        rows = await self.session.execute(
            select(Idea, Comment)
            .join(Idea, Idea.id == Comment.idea_id)
            .where(
                Comment.carded_at.is_(None),
                Comment.hidden.is_(False),
                Comment.erased_at.is_(None),
            )
            .order_by(Comment.id)
            .limit(limit)
        )
        return [(idea, comment) for idea, comment in rows]

    async def mark_carded(self, comment_ids: list[int], now: datetime) -> None:
        await self.session.execute(
            update(Comment)
            .where(Comment.id.in_(comment_ids))
            .values(carded_at=now)
            .execution_options(synchronize_session=False)
        )

    # ----------------------------------------------------------- notifications

    async def notification_state(self, member_id: int, idea_id: int) -> NotificationState:
        """The recipient's row for this idea, created if needed and locked until the
        transaction ends: two comments at once neither both insert it (one would fail and
        lose its comment) nor both read "not told yet" (two notifications, a lost count)."""
        insert = upsert_for(self.session)
        await self.session.execute(
            insert(NotificationState)
            .values(member_id=member_id, idea_id=idea_id, pending_comments=0, pending_replies=0)
            .on_conflict_do_nothing(index_elements=["member_id", "idea_id"])
        )
        state = await self.session.scalar(
            select(NotificationState)
            .where(NotificationState.member_id == member_id, NotificationState.idea_id == idea_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert state is not None
        return state

    async def due_notifications(self, before: datetime) -> list[NotificationState]:
        """Held-back notifications now due, claimed by this transaction: on PostgreSQL the
        rows stay locked until it ends, and another instance's flush skips them."""
        query = select(NotificationState).where(
            (NotificationState.pending_comments + NotificationState.pending_replies) > 0,
            NotificationState.last_sent_at <= before,
        )
        if self.session.bind is not None and self.session.bind.dialect.name == "postgresql":
            query = query.with_for_update(skip_locked=True)
        rows = await self.session.scalars(query)
        return list(rows.all())
