"""Members and their roles."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from datetime import datetime
from functools import cache
from typing import Any

from sqlalchemy import bindparam, delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.hot_path.statements import Direct
from storage.models import Member, MemberRole
from storage.upsert import insert_for, upsert_for

# Built once: every update loads its member, and building the statement costs more than
# running it. Plain columns (storage/hot_path/statements.py runs it on SQLite's driver).
_members, _roles = Member.__table__, MemberRole.__table__
_MEMBER_WITH_ROLES = (
    select(
        _members.c.id, _members.c.first_name, _members.c.language, _members.c.blocked, _roles.c.role
    )
    .outerjoin(_roles, _roles.c.member_id == _members.c.id)
    .where(_members.c.id == bindparam("id"))
)


@dataclass(slots=True)
class MemberRecord:
    """A member as an update sees it: a plain object, not an ORM one (every update loads
    one, and building an ORM instance cost more than the query). What a member has is changed
    through the repository's statements, which keep this object in step."""

    id: int
    first_name: str
    language: str | None
    blocked: bool
    role_names: set[str]


def _member(rows: Sequence[Any]) -> MemberRecord | None:
    """A member from its rows (one per role)."""
    if not rows:
        return None
    member_id, first_name, language, blocked, _role = rows[0]
    roles = {row[4] for row in rows if row[4] is not None}
    return MemberRecord(member_id, first_name, language, bool(blocked), roles)


@cache
def _register_statements(dialect: str) -> tuple[Any, Any]:
    insert = insert_for(dialect)
    member = (
        insert(_members)
        .values(
            id=bindparam("id"),
            first_name=bindparam("name"),
            language=bindparam("lang"),
            blocked=False,
            created_at=bindparam("now"),
        )
        .on_conflict_do_nothing(index_elements=[_members.c.id])
    )
    role = (
        insert(_roles)
        .values(member_id=bindparam("id"), role=bindparam("role"))
        .on_conflict_do_nothing(index_elements=[_roles.c.member_id, _roles.c.role])
    )
    return member, role


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, member_id: int) -> MemberRecord | None:
        """The member as this session sees it (its own writes included)."""
        return _member(list(await self.session.execute(_MEMBER_WITH_ROLES, {"id": member_id})))

    async def load(self, member_id: int) -> MemberRecord | None:
        """The member as committed, read without the session: every update starts here."""
        async with Direct.of_session(self.session).reading() as db:
            return _member(await db.rows(_MEMBER_WITH_ROLES, {"id": member_id}))

    async def register(
        self,
        member_id: int,
        first_name: str,
        language: str | None,
        role: str | None,
        now: datetime,
    ) -> MemberRecord:
        """A new member, in a transaction of its own (a crowd's first /start: no ORM)."""
        direct = Direct.of_session(self.session)
        add_member, add_role = _register_statements(direct.engine.dialect.name)
        name = first_name[:128]
        async with direct.writing() as db:
            await db.run(add_member, {"id": member_id, "name": name, "lang": language, "now": now})
            if role is not None:
                await db.run(add_role, {"id": member_id, "role": role})
        return MemberRecord(member_id, name, language, False, {role} if role else set())

    async def get_or_create(self, member_id: int, first_name: str) -> tuple[MemberRecord, bool]:
        name = first_name[:128]
        member = await self.get(member_id)
        if member is not None:
            if name and member.first_name != name:
                await self.session.execute(
                    update(Member).where(Member.id == member_id).values(first_name=name)
                )
                member.first_name = name
            return member, False
        insert = upsert_for(self.session)
        await self.session.execute(
            insert(Member)
            .values(id=member_id, first_name=name, blocked=False)
            .on_conflict_do_nothing(index_elements=[Member.id])
        )
        member = await self.get(member_id)
        assert member is not None
        return member, True

    async def set_language(self, member: MemberRecord, language: str) -> None:
        await self.session.execute(
            update(Member).where(Member.id == member.id).values(language=language)
        )
        member.language = language

    async def add_role(self, member: MemberRecord, role: str) -> bool:
        if role in member.role_names:
            return False
        insert = upsert_for(self.session)
        await self.session.execute(
            insert(MemberRole)
            .values(member_id=member.id, role=role)
            .on_conflict_do_nothing(index_elements=[MemberRole.member_id, MemberRole.role])
        )
        member.role_names.add(role)
        return True

    async def remove_role(self, member_id: int, role: str) -> bool:
        result = await self.session.execute(
            delete(MemberRole).where(MemberRole.member_id == member_id, MemberRole.role == role)
        )
        return (result.rowcount or 0) > 0

    async def with_roles(self) -> list[tuple[int, str, str]]:
        """(member id, first name, role) of every role held, by member."""
        rows = await self.session.execute(
            select(Member.id, Member.first_name, MemberRole.role)
            .join(MemberRole, MemberRole.member_id == Member.id)
            .order_by(Member.id, MemberRole.role)
        )
        return [(member_id, name, role) for member_id, name, role in rows]

    async def set_blocked(self, member_id: int, blocked: bool) -> None:
        await self.session.execute(
            update(Member).where(Member.id == member_id).values(blocked=blocked)
        )

    async def ids_with_roles(
        self, roles: Iterable[str], include_blocked: bool = False
    ) -> list[int]:
        query = (
            select(MemberRole.member_id)
            .join(Member, Member.id == MemberRole.member_id)
            .where(MemberRole.role.in_(list(roles)))
            .distinct()
            .order_by(MemberRole.member_id)
        )
        if not include_blocked:
            query = query.where(Member.blocked.is_(False))
        return list((await self.session.scalars(query)).all())

    async def delete(self, member_id: int) -> None:
        await self.session.execute(delete(Member).where(Member.id == member_id))


async def recipients(
    session: AsyncSession, roles: Iterable[str], default_language: str
) -> list[tuple[int, str]]:
    """(member id, language) of unblocked members holding any of the roles."""
    rows = await session.execute(
        select(Member.id, Member.language)
        .join(MemberRole, MemberRole.member_id == Member.id)
        .where(MemberRole.role.in_(list(roles)), Member.blocked.is_(False))
        .distinct()
        .order_by(Member.id)
    )
    return [(member_id, language or default_language) for member_id, language in rows]


async def personal_data(session: AsyncSession, member_id: int) -> dict[str, object]:
    """Everything stored about one member, for /mydata."""
    from storage.models import AnswerChoice, Comment, Idea, QuestionAnswer, Response, Support

    member = await session.get(Member, member_id)
    if member is None:
        return {}
    responses = list(
        (await session.scalars(select(Response).where(Response.member_id == member_id))).all()
    )
    answers: dict[str, list[str]] = {}
    for response in responses:
        for qid, text in await session.execute(
            select(QuestionAnswer.question_id, QuestionAnswer.text).where(
                QuestionAnswer.response_id == response.id
            )
        ):
            answers.setdefault(qid, [text] if text else [])
        for qid, oid in await session.execute(
            select(AnswerChoice.question_id, AnswerChoice.option_id).where(
                AnswerChoice.response_id == response.id
            )
        ):
            answers.setdefault(qid, []).append(oid)
    ideas = list((await session.scalars(select(Idea).where(Idea.author_id == member_id))).all())
    comments = await session.scalar(
        select(func.count()).select_from(Comment).where(Comment.author_id == member_id)
    )
    supports = await session.scalar(
        select(func.count()).select_from(Support).where(Support.member_id == member_id)
    )
    return {
        "member": member,
        "responses": responses,
        "answers": answers,
        "ideas": ideas,
        "comments": comments or 0,
        "supports": supports or 0,
    }


@dataclass(frozen=True)
class ErasedContent:
    """What the member had written, as it was: the caller redacts the copies elsewhere."""

    idea_ids: list[int]
    comment_ids: list[int]
    idea_titles: list[str]
    comments: list[tuple[str, str]]  # (author name as copied, text)
    name: str


async def erase(
    session: AsyncSession, member_id: int, fsm_key_fragment: str, now: datetime
) -> ErasedContent:
    """Delete the member; anonymise what they wrote (the threads of others stay); clear the
    copies of their name on others' ideas and comments; supports recomputed."""
    from storage.models import Comment, FsmRecord, Idea, Support

    member = await session.get(Member, member_id)
    ideas = list((await session.scalars(select(Idea).where(Idea.author_id == member_id))).all())
    comments = list(
        (await session.scalars(select(Comment).where(Comment.author_id == member_id))).all()
    )
    erased = ErasedContent(
        idea_ids=[i.id for i in ideas],
        comment_ids=[c.id for c in comments],
        idea_titles=[i.title for i in ideas if i.title],
        comments=[(c.author_name, c.text) for c in comments if c.text],
        name=member.first_name if member else "",
    )
    # A pending idea is withdrawn: nobody may approve a text that no longer exists.
    await session.execute(
        update(Idea)
        .where(Idea.author_id == member_id, Idea.status == "pending")
        .values(status="withdrawn")
    )
    await session.execute(
        update(Idea)
        .where(Idea.author_id == member_id)
        .values(author_id=None, author_name="", title="", text="", commune=None, erased_at=now)
    )
    await session.execute(
        update(Comment)
        .where(Comment.author_id == member_id)
        .values(author_id=None, author_name="", text="", erased_at=now)
    )
    await session.execute(
        update(Idea)
        .where(Idea.decided_by == member_id)
        .values(decided_by=None, decided_by_name=None)
    )
    await session.execute(
        update(Comment)
        .where(Comment.hidden_by == member_id)
        .values(hidden_by=None, hidden_by_name=None)
    )
    supported = list(
        (await session.scalars(select(Support.idea_id).where(Support.member_id == member_id))).all()
    )
    await session.execute(delete(Support).where(Support.member_id == member_id))
    for idea_id in supported:
        count = select(func.count()).select_from(Support).where(Support.idea_id == idea_id)
        await session.execute(
            update(Idea).where(Idea.id == idea_id).values(supports=count.scalar_subquery())
        )
    await session.execute(delete(FsmRecord).where(FsmRecord.key.contains(fsm_key_fragment)))
    # Roles, responses, reports, invitation uses and notification states follow by cascade.
    await session.execute(delete(Member).where(Member.id == member_id))
    return erased


async def languages_of(
    session: AsyncSession, member_ids: Iterable[int], default_language: str
) -> dict[int, str]:
    """Each id's language; ids that are not members (yet) get the default."""
    ids = list(member_ids)
    rows = await session.execute(select(Member.id, Member.language).where(Member.id.in_(ids)))
    known = {member_id: language for member_id, language in rows if language}
    return {member_id: known.get(member_id, default_language) for member_id in ids}
