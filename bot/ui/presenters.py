"""Formatting shared by messages: dates in the reader's language, phase lines, HTML escaping."""

from __future__ import annotations

import re
from datetime import datetime
from functools import lru_cache
from html import escape
from typing import TYPE_CHECKING

from babel.dates import format_date, format_datetime

from bot.consultation import Consultation, Phase, Question
from bot.i18n import Translator

if TYPE_CHECKING:
    from bot.context import AppContext


# Words that say nothing on their own: an option's text made of its label's words and these
# (articles, "and", "of") adds nothing to the label ("Jeunesse" / "La jeunesse").
_FILLERS = frozenset(
    "le la les l un une des du de d et à au aux het een der van en the a an of and to".split()
)
_WORD = re.compile(r"\w+")


@lru_cache(maxsize=2048)
def adds_to_label(label: str, text: str) -> bool:
    """Whether an option's full text says more than its button label (asked at every render
    of a question, of the same few texts: remembered)."""

    def words(value: str) -> set[str]:
        # A plural adds nothing either ("victim" / "victims").
        return {
            w[:-1] if len(w) > 3 and w.endswith("s") else w
            for w in _WORD.findall(value.lower())
            if w not in _FILLERS
        }

    return bool(words(text) - words(label))


def option_details(
    question: Question, consultation: Consultation, lang: str, translator: Translator
) -> list[str]:
    """The "• label : text" lines of the options whose text adds something to the label; a
    text that opens with its label ("Public space: its design…") does not repeat it."""
    c = consultation
    lines = []
    for o in question.options:
        label, text = c.text(o.label, lang), c.text(o.text, lang)
        head, colon, rest = text.partition(":")
        if colon and rest.strip() and not adds_to_label(label, head):
            label, text = head.strip(), rest.strip()
        if text and adds_to_label(label, text):
            lines.append(
                translator.gettext("• <b>{label}</b> : {text}", locale=lang).format(
                    label=escape(label), text=escape(text)
                )
            )
    return lines


def when(moment: datetime, consultation: Consultation, lang: str, time: bool = False) -> str:
    return _formatted(moment.astimezone(consultation.tz), lang, time)


@lru_cache(maxsize=512)
def _formatted(local: datetime, lang: str, time: bool) -> str:
    # Babel's formatting costs about a millisecond; the consultation has a handful of dates.
    if time:
        return format_datetime(local, "d MMMM y, HH:mm", locale=lang)
    return format_date(local, "d MMMM y", locale=lang)


def phase_dates(phase: Phase, consultation: Consultation, lang: str) -> str:
    return f"{when(phase.starts, consultation, lang)} – {when(phase.ends, consultation, lang)}"


def warm_dates(consultation: Consultation) -> None:
    """Format every phase's dates in every language before the first member asks: the first
    date of a language loads Babel's locale data (~50 ms on the loop)."""
    for lang in consultation.languages:
        for phase in consultation.phases:
            phase_dates(phase, consultation, lang)
            when(phase.starts, consultation, lang, time=True)
            when(phase.ends, consultation, lang, time=True)


def phase_line(phase: Phase, consultation: Consultation, lang: str) -> str:
    title = escape(consultation.text(phase.title, lang))
    return f"<b>{title}</b> ({phase_dates(phase, consultation, lang)})"


def timeline_text(
    consultation: Consultation, now: datetime, lang: str, translator: Translator
) -> str:
    """Every phase with its dates, marking the one open now."""
    _ = translator.gettext
    lines = []
    for i, phase in enumerate(consultation.phases, start=1):
        if phase.starts <= now <= phase.ends:
            mark = "▶️"
        elif phase.ends < now:
            mark = "✔️"
        else:
            mark = "⏳"
        lines.append(f"{mark} {i}. {phase_line(phase, consultation, lang)}")
    return "\n".join(lines)


def status_text(
    consultation: Consultation, now: datetime, lang: str, translator: Translator
) -> str:
    """One sentence on where the consultation stands."""
    _ = translator.gettext
    current = next((p for p in consultation.phases if p.starts <= now <= p.ends), None)
    upcoming = next((p for p in consultation.phases if p.starts > now), None)
    if current is not None:
        return _("Phase en cours : {phase}, jusqu’au {end}.").format(
            phase=escape(consultation.text(current.title, lang)),
            end=when(current.ends, consultation, lang, time=True),
        )
    if upcoming is not None:
        return _("Prochaine phase : {phase}, à partir du {start}.").format(
            phase=escape(consultation.text(upcoming.title, lang)),
            start=when(upcoming.starts, consultation, lang, time=True),
        )
    return _("La consultation est terminée. Merci pour votre participation !")


def welcome_text(app: AppContext, translator: Translator, lang: str) -> str:
    c = app.consultation
    parts = [
        f"<b>{escape(c.text(c.title, lang))}</b>",
        f"<i>{escape(c.text(c.organizer, lang))}</i>",
        escape(c.text(c.intro, lang)).strip(),
        timeline_text(c, app.clock(), lang, translator),
    ]
    return "\n\n".join(p for p in parts if p)


def help_text(app: AppContext, translator: Translator, lang: str) -> str:
    from bot.members.service import MEMBER_COMMANDS

    _ = translator.gettext
    commands = "\n".join(f"/{name} — {_(desc)}" for name, desc in MEMBER_COMMANDS)
    return "\n\n".join(
        [
            _("<b>Aide</b>"),
            _(
                "Répondez au sondage avec les boutons : vos réponses sont enregistrées à "
                "chaque question, vous pouvez vous arrêter et reprendre plus tard."
            ),
            commands,
            _("<b>Calendrier</b>"),
            timeline_text(app.consultation, app.clock(), lang, translator),
        ]
    )
