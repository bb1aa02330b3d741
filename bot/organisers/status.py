"""The organisers' status report: timeline, respondents, broadcast progress."""

from __future__ import annotations

from datetime import timedelta
from html import escape

from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext, system_clock
from bot.delivery.ratelimit import send_limits
from bot.i18n import Translator
from bot.organisers.broadcast_view import progress_lines, results_plan_lines
from bot.ui.presenters import timeline_text, when
from storage.models import Member, Response
from storage.repositories.instances import InstanceRepository
from storage.repositories.outbox import OutboxRepository
from storage.repositories.tallies import respondents_by_commune
from storage.repositories.transitions import TransitionRepository

STATUSES = ("sent", "pending", "sending", "failed", "blocked")
FAILED_SHOWN = 5
BROADCASTS_SHOWN = 5
RECENT_BROADCASTS = timedelta(hours=24)  # finished ones are shown this long
# Respondents per commune: the communes with most respondents, the others summed.
COMMUNES_SHOWN = 10


async def status_report(
    session: AsyncSession, app: AppContext, translator: Translator, lang: str
) -> str:
    _ = translator.gettext
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
        timeline_text(c, now, lang, translator),
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
    if app.communes:
        lines += await commune_lines(session, app, translator, lang)
    broadcasts = await OutboxRepository(session).broadcasts(now - RECENT_BROADCASTS)
    if broadcasts:
        lines.append("")
        lines.append(_("Diffusions en cours ou récentes :"))
        limits = send_limits(app.settings)
        lines.extend(progress_lines(broadcasts[-BROADCASTS_SHOWN:], limits, now, translator))
    lines.extend(await results_plan_lines(session, app, translator, transitions))
    failed = await OutboxRepository(session).failed(limit=FAILED_SHOWN)
    if failed:
        lines.append("")
        lines.append(_("Envois en échec (les plus récents) :"))
        for row in failed:
            lines.append(
                f"• #{row.id} {escape(row.topic)} → {row.chat_id} : {escape(row.error or '?')}"
            )
        lines.append(
            _("Pour les renvoyer : <code>consultbot outbox retry ID</code> ou <code>--all</code>.")
        )
    done = {k: r for k, r in transitions.items() if r.status != "failed"}
    if done:
        lines.append("")
        lines.append(_("Transitions effectuées :"))
        for key, record in sorted(done.items(), key=lambda kv: kv[1].scheduled_at):
            lines.append(f"• {key.split(':', 1)[1]} — {record.outcome}")
    failing = [r for r in transitions.values() if r.status == "failed"]
    if failing:
        lines.append("")
        lines.append(_("Transitions en échec :"))
        for record in sorted(failing, key=lambda r: r.scheduled_at):
            lines.append(
                _("• {key} — {attempts} essai(s), prochain le {when} : {error}").format(
                    key=record.key.split(":", 1)[1],
                    attempts=record.attempts,
                    when=when(record.next_attempt_at or now, c, lang, time=True),
                    error=escape(record.error or "?"),
                )
            )
    timeout = timedelta(seconds=app.settings.instance_timeout_seconds)
    alive = await InstanceRepository(session).alive(system_clock() - timeout)  # wall clock
    lines.append("")
    lines.append(_("Instances en service : {n}").format(n=alive))
    return "\n".join(lines)


async def commune_lines(
    session: AsyncSession, app: AppContext, translator: Translator, lang: str
) -> list[str]:
    """Respondents per commune: the COMMUNES_SHOWN largest, the rest in one line, then those
    who gave none. Counts of respondents only, to organisers: no answer is shown."""
    _ = translator.gettext
    counts = await respondents_by_commune(session, app.consultation.id)
    unknown = counts.pop(None, 0)
    if not counts and not unknown:
        return []
    ranked = sorted(counts.items(), key=lambda item: (-item[1], item[0] or ""))
    lines = ["", _("Répondants par commune :", locale=lang)]
    for commune, n in ranked[:COMMUNES_SHOWN]:
        name = app.communes.name_of(commune, lang) or ""
        lines.append(_("• {commune} : {n}", locale=lang).format(commune=escape(name), n=n))
    rest = ranked[COMMUNES_SHOWN:]
    if rest:
        lines.append(
            translator.ngettext(
                "• {communes} autre commune : {n}",
                "• {communes} autres communes : {n}",
                len(rest),
                locale=lang,
            ).format(communes=len(rest), n=sum(n for _c, n in rest))
        )
    if unknown:
        lines.append(_("• Commune non indiquée : {n}", locale=lang).format(n=unknown))
    return lines
