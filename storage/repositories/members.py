"""Members and their roles."""

from __future__ import annotations

from collections.abc import Iterable

from sqlalchemy import delete, select, update
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
