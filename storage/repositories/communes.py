"""Members' communes: which one each member gave, and whether they were asked at all."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import bindparam, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.hot_path.statements import Direct
from storage.models import Member, MemberRole


@dataclass(frozen=True)
class MemberCommune:
    """`commune` None and `answered` True: the member preferred not to say."""

    commune: str | None
    answered: bool


NOT_ASKED = MemberCommune(None, False)

# A member's commune on the survey's path (asked before the first question, answered in the
# commune dialog): run without the ORM session, as a tap's statements are. Through the ORM
# each took a pooled connection's checkout, BEGIN and COMMIT: 3 % of the bot's CPU in a
# 200-member walk on PostgreSQL for two taps out of seventeen (bench/survey_load.py).
_COMMUNE_OF = select(Member.commune, Member.commune_answered_at).where(Member.id == bindparam("id"))
_SAVE_COMMUNE = (
    update(Member)
    .where(Member.id == bindparam("id"))
    .values(commune=bindparam("commune"), commune_answered_at=bindparam("now"))
)


def _of_row(row: Any) -> MemberCommune:
    if row is None:
        return NOT_ASKED
    commune, answered_at = row
    return MemberCommune(commune, answered_at is not None)


class CommuneRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def of_member(self, member_id: int) -> MemberCommune:
        """As this session sees it (its own writes included)."""
        return _of_row((await self.session.execute(_COMMUNE_OF, {"id": member_id})).first())

    async def committed(self, member_id: int) -> MemberCommune:
        """As committed, read without the session (the survey's path)."""
        async with Direct.of_session(self.session).reading() as db:
            rows = await db.rows(_COMMUNE_OF, {"id": member_id})
        return _of_row(rows[0] if rows else None)

    async def save(self, member_id: int, commune: str | None, now: datetime) -> None:
        """`set`, committed at once in a transaction of its own (a member's own answer)."""
        async with Direct.of_session(self.session).writing() as db:
            await db.run(_SAVE_COMMUNE, {"id": member_id, "commune": commune, "now": now})

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


@dataclass(frozen=True)
class Recipient:
    member_id: int
    language: str
    commune: str | None  # None: not given (never asked, or rather not say)


async def recipients_with_communes(
    session: AsyncSession, roles: Iterable[str], default_language: str
) -> list[Recipient]:
    """Unblocked members holding any of the roles, with their language and commune (the
    results and the digest go to each commune's officials)."""
    rows = await session.execute(
        select(Member.id, Member.language, Member.commune)
        .join(MemberRole, MemberRole.member_id == Member.id)
        .where(MemberRole.role.in_(list(roles)), Member.blocked.is_(False))
        .distinct()
        .order_by(Member.id)
    )
    return [Recipient(m, lang or default_language, commune) for m, lang, commune in rows]
