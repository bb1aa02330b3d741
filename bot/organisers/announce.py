"""Organisers' announcements: a text to every unblocked member of a role, via the outbox."""

from __future__ import annotations

from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Role
from bot.delivery.estimate import Estimate, estimate
from bot.delivery.ratelimit import SendLimits
from bot.organisers import audit
from storage.repositories.audit import AuditRepository
from storage.repositories.members import recipients
from storage.repositories.outbox import NewDelivery, OutboxRepository

AUDIENCES: dict[str, list[Role]] = {
    "amb": [Role.AMBASSADOR],
    "off": [Role.OFFICIAL],
    "mod": [Role.MODERATOR],
    "all": [Role.AMBASSADOR, Role.OFFICIAL, Role.MODERATOR],
}


async def audience_size(session: AsyncSession, audience: str) -> int:
    return len(await recipients(session, AUDIENCES[audience], "fr"))


async def announcement_plan(session: AsyncSession, members: int, limits: SendLimits) -> Estimate:
    """What confirming would send (one text per member, as Telegram counts it), how long it
    takes at the outbox's rate after what it holds already, and its cost if paid."""
    ahead = await OutboxRepository(session).open_weight()
    return estimate(members, limits, ahead=ahead)


async def announce(
    session: AsyncSession,
    consultation_id: str,
    audience: str,
    html: str,
    now: datetime,
    batch: str,
    actor_id: int | None = None,
    actor_name: str | None = None,
) -> int:
    """`batch` names this announcement (the dialog's id): sending it again, e.g. the button
    pressed again after a crash, queues nothing more."""
    people = await recipients(session, AUDIENCES[audience], "fr")
    items = [
        NewDelivery(
            f"{consultation_id}:announce:{batch}:{member_id}",
            f"announce:{batch}",
            member_id,
            text=html,
        )
        for member_id, _ in people
    ]
    await OutboxRepository(session).enqueue(items, now)
    await AuditRepository(session).record(
        now,
        audit.Action.ANNOUNCEMENT,
        actor_id,
        actor_name,
        "announce",
        batch,
        f"to {audience}: {len(items)} member(s)",
    )
    await session.commit()
    return len(items)
