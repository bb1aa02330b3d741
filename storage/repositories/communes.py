"""Members' communes: which one each member gave, and whether they were asked at all."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime

from sqlalchemy import select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Member


@dataclass(frozen=True)
class MemberCommune:
    """`commune` None and `answered` True: the member preferred not to say."""

    commune: str | None
    answered: bool


NOT_ASKED = MemberCommune(None, False)


class CommuneRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_member(self, member_id: int) -> MemberCommune:
        row = (
            await self.session.execute(
                select(Member.commune, Member.commune_answered_at).where(Member.id == member_id)
            )
        ).first()
        if row is None:
            return NOT_ASKED
        commune, answered_at = row
        return MemberCommune(commune, answered_at is not None)

    async def set(self, member_id: int, commune: str | None, now: datetime) -> bool:
        """Store the member's answer (None: rather not say); False when there is no member."""
        result = await self.session.execute(
            update(Member)
            .where(Member.id == member_id)
            .values(commune=commune, commune_answered_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)

    async def set_if_unanswered(self, member_id: int, commune: str, now: datetime) -> bool:
        """The invitation's commune, unless the member already answered (they may have
        changed it since they first used the link)."""
        result = await self.session.execute(
            update(Member)
            .where(Member.id == member_id, Member.commune_answered_at.is_(None))
            .values(commune=commune, commune_answered_at=now)
            .execution_options(synchronize_session=False)
        )
        return bool(result.rowcount)
