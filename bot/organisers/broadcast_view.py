"""Broadcasts in the organisers' words: what one will cost before it is sent (/announce), how
far the ones under way have got (/status, `consultbot status`)."""

from __future__ import annotations

import math
from collections.abc import Collection
from datetime import datetime
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import PhaseKind
from bot.context import AppContext
from bot.delivery.estimate import Estimate, estimate, seconds_left
from bot.delivery.ratelimit import SendLimits, send_limits
from bot.i18n import Translator
from bot.results.delivery import results_plan
from bot.results.tally import compute
from storage.repositories.outbox import BroadcastProgress, OutboxRepository


def duration_text(seconds: float, translator: Translator) -> str:
    if seconds < 60:
        return translator.gettext("moins d’une minute")
    minutes = math.ceil(seconds / 60)
    if minutes < 60:
        return translator.ngettext("{n} minute", "{n} minutes", minutes).format(n=minutes)
    return translator.gettext("{h} h {m} min").format(h=minutes // 60, m=f"{minutes % 60:02d}")


def estimate_lines(estimate: Estimate, translator: Translator) -> list[str]:
    _ = translator.gettext
    lines = [
        translator.ngettext(
            "{n} message à envoyer, au sens de Telegram (chaque photo d’un album compte).",
            "{n} messages à envoyer, au sens de Telegram (chaque photo d’un album compte).",
            estimate.messages,
        ).format(n=estimate.messages),
        _("Durée estimée : {duration}, au rythme de {rate} messages par seconde.").format(
            duration=duration_text(estimate.seconds, translator), rate=f"{estimate.rate:g}"
        ),
    ]
    if estimate.ahead:
        lines.append(
            _("{n} messages déjà en attente partiront avant (compris dans la durée).").format(
                n=estimate.ahead
            )
        )
    if estimate.stars is not None:
        lines.append(
            _(
                "Diffusion payante de Telegram activée : coût estimé {stars} ⭐ (au plus "
                "{at_most} ⭐), 0,1 Star par message au-delà des 30 gratuits par seconde, "
                "prélevé sur le solde du bot."
            ).format(stars=f"{estimate.stars:g}", at_most=f"{estimate.stars_at_most:g}")
        )
    return lines


def progress_lines(
    broadcasts: list[BroadcastProgress], limits: SendLimits, now: datetime, translator: Translator
) -> list[str]:
    _ = translator.gettext
    lines = []
    for b in broadcasts:
        counts = _("{sent} envoyés, {pending} en attente, {failed} en échec, {blocked} bloqués")
        text = counts.format(
            sent=b.counts.get("sent", 0),
            pending=b.open,
            failed=b.counts.get("failed", 0),
            blocked=b.counts.get("blocked", 0),
        )
        if b.open:
            retry_in = (b.latest_due - now).total_seconds() if b.latest_due else 0.0
            left = seconds_left(b.ahead, b.per_chat, limits, retry_in)
            after = _("reste environ {duration}").format(duration=duration_text(left, translator))
        else:
            after = _("terminée")
        lines.append(f"• {escape(b.topic)} : {text} — {after}")
    return lines


async def results_plan_lines(
    session: AsyncSession, app: AppContext, translator: Translator, recorded: Collection[str]
) -> list[str]:
    """Before the results phase opens (its opening not in `recorded`): what its broadcast
    will send, as Telegram counts it, and how long it will take."""
    c = app.consultation
    phase = c.phase(PhaseKind.RESULTS)
    if phase is None or f"{c.id}:{phase.id}:open" in recorded:
        return []
    results = await compute(session, c)
    plan = await results_plan(session, app, translator, results)
    if plan is None or not plan.recipients:
        return []
    ahead = await OutboxRepository(session).open_weight()
    limits = send_limits(app.settings)
    found = estimate(plan.messages, limits, ahead=ahead, per_chat=plan.per_chat)
    head = translator.ngettext(
        "Diffusion des résultats prévue : {n} destinataire, dont {pushed} avec les "
        "graphiques envoyés d’office (les autres les demandent avec 📊).",
        "Diffusion des résultats prévue : {n} destinataires, dont {pushed} avec les "
        "graphiques envoyés d’office (les autres les demandent avec 📊).",
        plan.recipients,
    ).format(n=plan.recipients, pushed=plan.pushed)
    return ["", head, *estimate_lines(found, translator)]
