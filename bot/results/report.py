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
from bot.i18n import Translator, percent
from bot.results.report_pdf import ReportQuestion, ReportRow, ReportTexts, render_pdf
from bot.results.tally import Results, compute
from bot.survey.kinds import kind_of
from bot.ui.presenters import when

_TAG = re.compile(r"<[^>]+>")


@dataclass(frozen=True)
class ReportFigures:
    """What a report shows: the network's results and, when a commune is shown beside them,
    the commune's; `notice` says why a commune asked for is not shown."""

    network: Results
    commune: str | None = None
    local: Results | None = None
    notice: str | None = None


def number(n: int, lang: str) -> str:
    """12345 as the reader writes it: "12 345" in French, "12.345" in Dutch, "12,345" in English."""
    return format_decimal(n, locale=lang)


def plain(html: str) -> str:
    """A consultation or commentary text without its Telegram HTML tags."""
    return unescape(_TAG.sub("", html)).strip()


async def figures(session: AsyncSession, app: AppContext, commune: str | None) -> ReportFigures:
    """The network's counts; `commune` (an id of the consultation's communes, checked by the
    caller) is named on the cover until per-commune counts exist."""
    results = await compute(session, app.consultation)
    return ReportFigures(results, commune)


def commentary(consultation: Consultation, lang: str) -> list[str]:
    """The results phase's description, paragraph by paragraph."""
    phase = consultation.phase(PhaseKind.RESULTS)
    text = plain(consultation.text(phase.description, lang)) if phase else ""
    return [p.strip() for p in re.split(r"\n\s*\n", text) if p.strip()]


def report_texts(
    app: AppContext,
    found: ReportFigures,
    paragraphs: list[str],
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
        facts.append(
            translator.ngettext(
                "{n} répondant à {commune}",
                "{n} répondants à {commune}",
                found.local.respondents,
                locale=lang,
            ).format(n=number(found.local.respondents, lang), commune=commune)
        )
    series = None
    if found.local is not None and commune:
        series = (commune, _("Réseau", locale=lang))
    return ReportTexts(
        organiser=c.text(c.organizer, lang) if c.organizer else "",
        title=c.text(c.title, lang),
        subtitle=subtitle,
        facts=facts,
        commentary_heading=_("Commentaire", locale=lang),
        commentary=paragraphs,
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
    local = {qr.question.id: qr for qr in found.local.questions} if found.local is not None else {}
    out = []
    for i, qr in enumerate(found.network.questions, start=1):
        mine = local.get(qr.question.id)
        own = {r.option_id: r for r in mine.options} if mine is not None else {}
        rows = []
        for r in qr.options:
            option = qr.question.option(r.option_id)
            label = c.text(option.label, lang) if option else r.option_id
            text = c.text(option.text or option.label, lang) if option else r.option_id
            theirs = own.get(r.option_id)
            rows.append(
                ReportRow(
                    label=label,
                    text=text,
                    count=r.count,
                    share=r.share,
                    count_text=number(r.count, lang),
                    share_text=percent(r.share, lang),
                    local_share=theirs.share if theirs else None,
                    local_count_text=number(theirs.count, lang) if theirs else None,
                    local_share_text=percent(theirs.share, lang) if theirs else None,
                )
            )
        note = translator.ngettext(
            "{n} personne a répondu", "{n} personnes ont répondu", qr.seen, locale=lang
        ).format(n=number(qr.seen, lang))
        remark = None
        if kind_of(qr.question).max_choices(qr.question) > 1:
            remark = translator.gettext(
                "Plusieurs réponses possibles : le total des parts peut dépasser 100 %.",
                locale=lang,
            )
        heading = f"{i}. {plain(c.text(qr.question.text, lang))}"
        out.append(ReportQuestion(heading, note, rows, remark))
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
) -> bytes:
    """The PDF's bytes: counted by the database, drawn in a worker thread."""
    found = await figures(session, app, commune)
    texts = report_texts(
        app, found, commentary(app.consultation, lang), lang, translator, now or app.clock()
    )
    return await asyncio.to_thread(render_pdf, texts)
