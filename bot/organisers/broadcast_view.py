"""Broadcasts in the organisers' words: what one will cost before it is sent (/announce), how
far the ones under way have got (/status, `consultbot status`)."""

from __future__ import annotations

import math
from datetime import datetime
from html import escape

from bot.delivery.estimate import Estimate, seconds_left
from bot.delivery.ratelimit import SendLimits
from bot.i18n import Translator
from storage.repositories.outbox import BroadcastProgress


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
