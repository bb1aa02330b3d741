"""The organisers' status report: timeline, respondents, broadcast progress."""

from __future__ import annotations

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.presenters import timeline_text
from storage.models import Member, Response
from storage.repositories.outbox import OutboxRepository
from storage.repositories.transitions import TransitionRepository

STATUSES = ("sent", "pending", "sending", "failed", "blocked")


async def status_report(session: AsyncSession, app: AppContext, lang: str) -> str:
    _ = app.translator.gettext
    c = app.consultation
    now = app.clock()
    members = await session.scalar(select(func.count()).select_from(Member)) or 0
    responses = dict(
        (
            await session.execute(
                select(Response.status, func.count())
                .where(Response.consultation_id == c.id)
                .group_by(Response.status)
            )
        ).all()
    )
    counts = await OutboxRepository(session).counts()
    transitions = await TransitionRepository(session).all()
    lines = [
        _("<b>État de la consultation</b>"),
        timeline_text(c, now, lang, app.translator),
        "",
        _("Membres : {members} · réponses envoyées : {submitted} · brouillons : {drafts}").format(
            members=members,
            submitted=responses.get("submitted", 0),
            drafts=responses.get("draft", 0),
        ),
        _(
            "Envois : {sent} envoyés, {pending} en attente, {failed} en échec, {blocked} bloqués"
        ).format(
            sent=counts.get("sent", 0),
            pending=counts.get("pending", 0) + counts.get("sending", 0),
            failed=counts.get("failed", 0),
            blocked=counts.get("blocked", 0),
        ),
    ]
    if transitions:
        lines.append("")
        lines.append(_("Transitions effectuées :"))
        for key, record in sorted(transitions.items(), key=lambda kv: kv[1].scheduled_at):
            lines.append(f"• {key.split(':', 1)[1]} — {record.outcome}")
    return "\n".join(lines)
