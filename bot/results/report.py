"""The report for the council: one PDF with the title, the dates, the respondents, the
commentary and each question's chart and counts, in one language, for the network or for one
commune beside it. `consultbot report` and the organisers' button both build it here.

The counts come from the database (GROUP BY); the drawing (bot/results/report_pdf.py) takes
seconds and runs in a worker thread, never on the event loop.
"""

from __future__ import annotations

import asyncio
import re
from dataclasses import dataclass
from datetime import datetime
from html import unescape

from babel.numbers import format_decimal
from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation, PhaseKind
from bot.context import AppContext
from bot.i18n import Translator, at_place, percent, typeset
from bot.results.communes import ByCommune, compute_by_commune, hidden_reason, withheld_reason
from bot.results.report_pdf import ReportQuestion, ReportRow, ReportTexts, render_pdf
from bot.results.tally import Results, compute, several_answers, whose_answers
from bot.ui.presenters import when
from storage.repositories.commentary import CommentaryRepository

_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class ReportFigures:
    """What a report shows: the network's results and, when a commune is shown beside them,
    the commune's (`local`); `notice` says why a commune asked for is not shown, `withheld`
    the questions whose commune figures are not (too few of it, or of the rest, answered)."""

    network: Results
    commune: str | None = None
    local: Results | None = None
    notice: str | None = None
    withheld: frozenset[str] = frozenset()

    def fingerprint(self) -> tuple[object, ...]:
        """Equal while the report's counts are (its sentences depend on the language only)."""
        local = self.local.fingerprint() if self.local is not None else None
        return (self.network.fingerprint(), self.commune, local, tuple(sorted(self.withheld)))


def number(n: int, lang: str) -> str:
    """12345 as the reader writes it: "12 345" in French, "12.345" in Dutch, "12,345" in English."""
    return format_decimal(n, locale=lang)


def plain(html: str) -> str:
    """A consultation or commentary text without its Telegram HTML tags."""
    return unescape(_TAG.sub("", html)).strip()


async def figures(
    session: AsyncSession,
    app: AppContext,
    commune: str | None,
    lang: str,
    translator: Translator,
) -> ReportFigures:
    """The network's counts and, for `commune` (an id of the consultation's communes, checked
    by the caller), the commune's beside them under the officials' rule (bot/results/
    communes.py: `min_group` of the commune and of the rest of the network)."""
    if commune is None:
        return ReportFigures(await compute(session, app.consultation))
    found = await compute_by_commune(session, app.consultation)
    return commune_figures(found, commune, app.consultation, lang, translator)


def commune_figures(
    found: ByCommune, commune: str, consultation: Consultation, lang: str, translator: Translator
) -> ReportFigures:
    view = found.view(commune)
    notice = hidden_reason(view, consultation, lang, translator)
    return ReportFigures(view.network, commune, view.local, notice, view.withheld)


def paragraphs(html: str, lang: str) -> list[str]:
    text = typeset(plain(html), lang)
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


async def commentary(
    session: AsyncSession, consultation: Consultation, lang: str
) -> tuple[list[str], list[str]]:
    """(the results phase's own text; the organisers' approved commentary, bot/results/
    commentary.py, in `lang` or else the source language), paragraph by paragraph."""
    phase = consultation.phase(PhaseKind.RESULTS)
    if phase is None:
        return [], []
    introduction = paragraphs(consultation.text(phase.description, lang), lang)
    record = await CommentaryRepository(session).get(consultation.id, phase.id)
    if record is None or not record.approved:
        return introduction, []
    approved = record.texts.get(lang) or record.texts.get(consultation.source_language) or ""
    return introduction, paragraphs(approved, lang)


def report_texts(
    app: AppContext,
    found: ReportFigures,
    said: tuple[list[str], list[str]],
    lang: str,
    translator: Translator,
    now: datetime,
) -> ReportTexts:
    """Everything the report says, translated, numbers and dates as `lang` writes them."""
    c = app.consultation
    _ = translator.gettext
    results = found.network
    commune = app.communes.name_of(found.commune, lang)
    subtitle = _("Rapport des résultats", locale=lang)
    if commune:
        subtitle = _("Rapport des résultats — {commune}", locale=lang).format(commune=commune)
    facts = []
    survey = c.phase(PhaseKind.SURVEY)
    if survey is not None:
        facts.append(
            _("Sondage : du {start} au {end}", locale=lang).format(
                start=when(survey.starts, c, lang), end=when(survey.ends, c, lang)
            )
        )
    published = c.phase(PhaseKind.RESULTS)
    if published is not None:
        facts.append(
            _("Résultats publiés le {date}", locale=lang).format(
                date=when(published.starts, c, lang)
            )
        )
    facts.append(
        translator.ngettext(
            "{n} répondant pour l’ensemble du réseau",
            "{n} répondants pour l’ensemble du réseau",
            results.respondents,
            locale=lang,
        ).format(n=number(results.respondents, lang))
    )
    if found.local is not None and commune:
        local = translator.ngettext(
            "{n} répondant à {commune}",
            "{n} répondants à {commune}",
            found.local.respondents,
            locale=lang,
        ).format(n=number(found.local.respondents, lang), commune=commune)
        facts.append(at_place(local, commune, lang))
    series = None
    if found.local is not None and commune:
        series = (commune, _("Réseau", locale=lang))
    return ReportTexts(
        organiser=c.text(c.organizer, lang) if c.organizer else "",
        title=typeset(c.text(c.title, lang), lang),
        subtitle=typeset(subtitle, lang),
        facts=[typeset(fact, lang) for fact in facts],
        introduction=said[0],
        commentary_heading=_("Commentaire", locale=lang),
        commentary=said[1],
        generated=_("Document établi le {date} avec ConsultBot.", locale=lang).format(
            date=when(now, c, lang, time=True)
        ),
        page_label=_("Page {page} / {pages}", locale=lang),
        columns=(_("Réponse", locale=lang), _("Nombre", locale=lang), _("Part", locale=lang)),
        questions=_questions(app, found, lang, translator),
        series=series,
        notice=found.notice,
    )


def _questions(
    app: AppContext, found: ReportFigures, lang: str, translator: Translator
) -> list[ReportQuestion]:
    c = app.consultation
    commune = app.communes.name_of(found.commune, lang) or ""
    local = {qr.question.id: qr for qr in found.local.questions} if found.local is not None else {}
    out = []
    for i, qr in enumerate(found.network.questions, start=1):
        withheld = qr.question.id in found.withheld
        mine = None if withheld else local.get(qr.question.id)
        own = {r.option_id: r for r in mine.options} if mine is not None else {}
        rows = []
        for r in qr.options:
            option = qr.question.option(r.option_id)
            label = typeset(c.text(option.label, lang), lang) if option else r.option_id
            text = (
                typeset(c.text(option.text or option.label, lang), lang) if option else r.option_id
            )
            theirs = own.get(r.option_id)
            rows.append(
                ReportRow(
                    label=label,
                    text=text,
                    count=r.count,
                    share=r.share,
                    count_text=number(r.count, lang),
                    share_text=percent(r.share, lang),
                    local_count=theirs.count if theirs else None,
                    local_share=theirs.share if theirs else None,
                    local_count_text=number(theirs.count, lang) if theirs else None,
                    local_share_text=percent(theirs.share, lang) if theirs else None,
                )
            )
        if mine is not None:
            note = translator.ngettext(
                "{commune} : {local} · réseau : {n} personne a répondu",
                "{commune} : {local} · réseau : {n} personnes ont répondu",
                qr.seen,
                locale=lang,
            ).format(commune=commune, local=number(mine.seen, lang), n=number(qr.seen, lang))
        elif found.local is not None:  # the commune is shown, but not for this question
            note = translator.ngettext(
                "Réseau : {n} personne a répondu",
                "Réseau : {n} personnes ont répondu",
                qr.seen,
                locale=lang,
            ).format(n=number(qr.seen, lang))
        else:
            note = translator.ngettext(
                "{n} personne a répondu", "{n} personnes ont répondu", qr.seen, locale=lang
            ).format(n=number(qr.seen, lang))
        # As the summary says it: several answers possible, whose answers a follow-up counts.
        remarks = [
            several_answers(qr.question, lang, translator),
            whose_answers(qr.question, c, lang, translator),
        ]
        remark = typeset(". ".join(r for r in remarks if r), lang) or None
        heading = typeset(f"{i}. {plain(c.text(qr.question.text, lang))}", lang)
        why = withheld_reason(commune, lang, translator) if withheld and found.local else None
        out.append(
            ReportQuestion(
                heading, typeset(note, lang), rows, remark, paired=mine is not None, withheld=why
            )
        )
    return out


def report_filename(consultation: Consultation, lang: str, commune: str | None) -> str:
    parts = [consultation.id, "report", lang, *([commune] if commune else [])]
    return "-".join(parts) + ".pdf"


async def build_report(
    session: AsyncSession,
    app: AppContext,
    translator: Translator,
    lang: str,
    commune: str | None = None,
    now: datetime | None = None,
    found: ReportFigures | None = None,
) -> bytes:
    """The PDF's bytes: counted by the database (unless `found` already was), drawn in a
    worker thread."""
    if found is None:
        found = await figures(session, app, commune, lang, translator)
    said = await commentary(session, app.consultation, lang)
    texts = report_texts(app, found, said, lang, translator, now or app.clock())
    return await asyncio.to_thread(render_pdf, texts)
