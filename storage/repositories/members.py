"""Members and their roles."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, func, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member, MemberRole


class MemberRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def get(self, member_id: int) -> Member | None:
        return await self.session.get(Member, member_id)

    async def get_or_create(self, member_id: int, first_name: str) -> tuple[Member, bool]:
        member = await self.get(member_id)
        if member is not None:
            if first_name and member.first_name != first_name:
                member.first_name = first_name[:128]
            return member, False
        member = Member(id=member_id, first_name=first_name[:128], blocked=False, roles=[])
        self.session.add(member)
        await self.session.flush()
        return member, True

    async def set_language(self, member: Member, language: str) -> None:
        member.language = language

    async def add_role(self, member: Member, role: str) -> bool:
        if role in member.role_names:
            return False
        member.roles.append(MemberRole(member_id=member.id, role=role))
        return True

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


async def erase(session: AsyncSession, member_id: int, fsm_key_fragment: str) -> None:
    """Delete the member and what they wrote; counters follow (supports recomputed)."""
    from storage.models import Comment, Delivery, FsmRecord, Idea, Support

    supported = list(
        (await session.scalars(select(Support.idea_id).where(Support.member_id == member_id))).all()
    )
    await session.execute(delete(Comment).where(Comment.author_id == member_id))
    await session.execute(delete(Idea).where(Idea.author_id == member_id))
    await session.execute(delete(Support).where(Support.member_id == member_id))
    for idea_id in supported:
        count = select(func.count()).select_from(Support).where(Support.idea_id == idea_id)
        await session.execute(
            update(Idea).where(Idea.id == idea_id).values(supports=count.scalar_subquery())
        )
    await session.execute(
        delete(Delivery).where(Delivery.chat_id == member_id, Delivery.status == "pending")
    )
    await session.execute(delete(FsmRecord).where(FsmRecord.key.contains(fsm_key_fragment)))
    await session.execute(delete(Member).where(Member.id == member_id))


async def languages_of(
    session: AsyncSession, member_ids: Iterable[int], default_language: str
) -> dict[int, str]:
    """Each id's language; ids that are not members (yet) get the default."""
    ids = list(member_ids)
    rows = await session.execute(select(Member.id, Member.language).where(Member.id.in_(ids)))
    known = {member_id: language for member_id, language in rows if language}
    return {member_id: known.get(member_id, default_language) for member_id in ids}
