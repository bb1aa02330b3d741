"""Invitation links: random tokens (192 bits), stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Role
from bot.organisers import audit
from storage.models import Invitation
from storage.repositories.audit import AuditRepository
from storage.repositories.invitations import InvitationRepository, Redemption
from storage.repositories.members import MemberRepository

PAYLOAD_PREFIX = "inv_"


def hash_token(token: str) -> str:
    return hashlib.sha256(token.encode()).hexdigest()


def invite_link(bot_username: str, token: str) -> str:
    return f"https://t.me/{bot_username}?start={PAYLOAD_PREFIX}{token}"


async def create_invitation(
    session: AsyncSession,
    role: Role,
    uses: int | None,
    expires_in: timedelta | None,
    now: datetime,
    actor_name: str = "command line",
    commune: str | None = None,
) -> str:
    """A new token (returned once, never stored in clear); `commune`: those who use it live
    there (an id of the consultation's communes, checked by the caller)."""
    token = secrets.token_urlsafe(24)
    expires = now + expires_in if expires_in else None
    invitation = await InvitationRepository(session).create(
        hash_token(token), role.value, uses, expires, commune
    )
    await AuditRepository(session).record(
        now,
        audit.Action.INVITATION_CREATED,
        actor_name=actor_name,
        target="invitation",
        target_id=invitation.id,
        detail=(
            f"role={role.value} uses={uses or '∞'} "
            f"expires={expires.isoformat() if expires else '-'}"
            + (f" commune={commune}" if commune else "")
        ),
    )
    await session.commit()
    return token


async def revoke_invitation(
    session: AsyncSession, invitation_id: int, now: datetime, actor_name: str = "command line"
) -> Invitation | None:
    """Its link grants nothing from now on (roles already given stay: see revoke_role).
    None when there is no such invitation. Audited; commits."""
    invitation = await InvitationRepository(session).revoke(invitation_id, now)
    if invitation is None:
        return None
    await AuditRepository(session).record(
        now,
        audit.Action.INVITATION_REVOKED,
        actor_name=actor_name,
        target="invitation",
        target_id=invitation.id,
        detail=f"role={invitation.role} used={invitation.used}",
    )
    await session.commit()
    return invitation


async def revoke_role(
    session: AsyncSession,
    member_id: int,
    role: Role,
    now: datetime,
    actor_name: str = "command line",
) -> bool:
    """The member loses the role at their next update (each update reads the roles again);
    an invitation they used before cannot give it back. False if they did not hold it.
    Audited; commits."""
    removed = await MemberRepository(session).remove_role(member_id, role.value)
    if removed:
        await AuditRepository(session).record(
            now,
            audit.Action.ROLE,
            actor_name=actor_name,
            target="member",
            target_id=member_id,
            detail=f"-{role.value}",
        )
    await session.commit()
    return removed


async def redeem(session: AsyncSession, token: str, member_id: int, now: datetime) -> Redemption:
    return await InvitationRepository(session).redeem(hash_token(token), member_id, now)
