"""Invitation tokens, stored as SHA-256 hashes; used up atomically."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from sqlalchemy import or_, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import Invitation, InvitationUse


class Redeem(StrEnum):
    OK = "ok"
    ALREADY = "already"  # this member used this invitation before: no new use counted
    UNKNOWN = "unknown"
    EXPIRED = "expired"
    USED_UP = "used_up"
    REVOKED = "revoked"  # revoked by an organiser: grants nothing


@dataclass(frozen=True)
class Redemption:
    outcome: Redeem
    role: str | None = None
    commune: str | None = None  # the commune the invitation is for, if any


class InvitationRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def create(
        self,
        token_hash: str,
        role: str,
        max_uses: int | None,
        expires_at: datetime | None,
        commune: str | None = None,
    ) -> Invitation:
        invitation = Invitation(
            token_hash=token_hash,
            role=role,
            max_uses=max_uses,
            expires_at=expires_at,
            used=0,
            commune=commune,
        )
        self.session.add(invitation)
        await self.session.flush()
        return invitation

    async def redeem(self, token_hash: str, member_id: int, now: datetime) -> Redemption:
        invitation = await self.session.scalar(
            select(Invitation).where(Invitation.token_hash == token_hash)
        )
        if invitation is None:
            return Redemption(Redeem.UNKNOWN)
        if invitation.revoked_at is not None:
            return Redemption(Redeem.REVOKED)
        if await self.session.get(InvitationUse, (invitation.id, member_id)) is not None:
            return Redemption(Redeem.ALREADY, invitation.role, invitation.commune)
        # Conditional update: two members racing for the last use cannot both win.
        result = await self.session.execute(
            update(Invitation)
            .where(
                Invitation.id == invitation.id,
                or_(Invitation.max_uses.is_(None), Invitation.used < Invitation.max_uses),
                or_(Invitation.expires_at.is_(None), Invitation.expires_at > now),
                Invitation.revoked_at.is_(None),  # revoked since it was read
            )
            .values(used=Invitation.used + 1)
            .execution_options(synchronize_session=False)
        )
        if result.rowcount == 0:
            await self.session.refresh(invitation)
            if invitation.revoked_at is not None:
                return Redemption(Redeem.REVOKED)
            expires = invitation.expires_at
            if expires is not None and expires.tzinfo is None:
                expires = expires.replace(tzinfo=now.tzinfo)
            expired = expires is not None and expires <= now
            outcome = Redeem.EXPIRED if expired else Redeem.USED_UP
            return Redemption(outcome, invitation.role)
        self.session.add(InvitationUse(invitation_id=invitation.id, member_id=member_id))
        await self.session.flush()
        return Redemption(Redeem.OK, invitation.role, invitation.commune)

    async def all(self) -> list[Invitation]:
        return list((await self.session.scalars(select(Invitation).order_by(Invitation.id))).all())

    async def revoke(self, invitation_id: int, now: datetime) -> Invitation | None:
        """The invitation, revoked now (or earlier: it stays revoked then); None if unknown."""
        await self.session.execute(
            update(Invitation)
            .where(Invitation.id == invitation_id, Invitation.revoked_at.is_(None))
            .values(revoked_at=now)
            .execution_options(synchronize_session=False)
        )
        return await self.session.get(Invitation, invitation_id, populate_existing=True)
