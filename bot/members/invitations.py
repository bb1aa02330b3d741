"""Invitation links: random tokens (192 bits), stored only as SHA-256 hashes."""

from __future__ import annotations

import hashlib
import secrets
from datetime import datetime, timedelta

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Role
from bot.organisers import audit
from storage.repositories.audit import AuditRepository
from storage.repositories.invitations import InvitationRepository, Redemption

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


async def redeem(session: AsyncSession, token: str, member_id: int, now: datetime) -> Redemption:
    return await InvitationRepository(session).redeem(hash_token(token), member_id, now)
