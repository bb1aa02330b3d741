"""The audit log as organisers read it: `consultbot audit [--since …]` and /audit."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation, parse_duration
from storage.models import AuditEntry
from storage.repositories.audit import AuditRepository

# /audit shows the latest entries; the command line shows everything asked for.
CHAT_ENTRIES = 50


class Action(StrEnum):
    APPROVE = "idea.approve"
    REJECT = "idea.reject"
    HIDE_IDEA = "idea.hide"
    HIDE_COMMENT = "comment.hide"
    ROLE = "member.role"
    INVITATION_CREATED = "invitation.create"
    INVITATION_USED = "invitation.use"
    INVITATION_REVOKED = "invitation.revoke"
    ANNOUNCEMENT = "announce"
    EXPORT = "export"  # for the exports (recorded by whoever writes one)
    ERASURE = "member.erase"
    COMMENTARY_EDIT = "commentary.edit"  # the results commentary rewritten (target_id: version)
    COMMENTARY_APPROVE = "commentary.approve"


def parse_since(value: str, now: datetime, consultation: Consultation) -> datetime:
    """`7d`, `48h` (that long ago), or a date / date-time in the consultation's time zone."""
    try:
        return now - parse_duration(value)
    except ValueError:
        pass
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        raise ValueError(
            f"--since {value!r}: give a duration such as 7d or 48h, or a date such as 2026-11-30"
        ) from None
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=consultation.tz)
    return moment


def entry_line(entry: AuditEntry, consultation: Consultation) -> str:
    """One plain-text line: when, who, what, on what, details."""
    at = entry.at.astimezone(consultation.tz).strftime("%Y-%m-%d %H:%M")
    if entry.actor_id is None and not entry.actor_name:
        who = "—"
    else:
        who = (
            f"{entry.actor_name or '?'} ({entry.actor_id})" if entry.actor_id else entry.actor_name
        )
    what = entry.action
    if entry.target:
        what += f" {entry.target}" + (f" {entry.target_id}" if entry.target_id else "")
    return f"{at}  {who}  {what}" + (f"  {entry.detail}" if entry.detail else "")


async def audit_lines(
    session: AsyncSession, consultation: Consultation, since: datetime | None, limit: int | None
) -> list[str]:
    entries = await AuditRepository(session).since(since, limit)
    return [entry_line(e, consultation) for e in entries]


def html_lines(lines: list[str]) -> list[str]:
    return [f"<code>{escape(line[:300])}</code>" for line in lines]
