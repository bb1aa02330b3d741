"""Counts -> ranked results and their texts per language (the charts are in bot/results/charts.py)."""

from __future__ import annotations

from dataclasses import dataclass
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation, PhaseKind, Question
from bot.i18n import Translator, percent, typeset
from bot.survey.kinds import kind_of
from bot.text_budget import clip_line, join_within
from storage.repositories.tallies import FreeText, Tally, tally

MESSAGE_LIMIT = 4096


@dataclass(frozen=True)
class RankedOption:
    option_id: str
    count: int
    share: float  # of those who saw the question


@dataclass(frozen=True)
class QuestionResult:
    question: Question
    seen: int
    options: list[RankedOption]


@dataclass(frozen=True)
class Results:
    respondents: int
    questions: list[QuestionResult]

    def fingerprint(self) -> tuple[object, ...]:
        """Equal while the counts are: what a cached chart was drawn from."""
        return (
            self.respondents,
            tuple(
                (q.question.id, q.seen, tuple((o.option_id, o.count) for o in q.options))
                for q in self.questions
            ),
        )


def counted_questions(consultation: Consultation) -> list[Question]:
    """The questions whose answers are counted per option (ranked, charted)."""
    return [q for q in consultation.questions if kind_of(q).counted]


def free_text_questions(consultation: Consultation) -> list[Question]:
    """The questions whose answers are listed as free text, to organisers only."""
    return [q for q in consultation.questions if not kind_of(q).counted]


def question_numbers(consultation: Consultation) -> dict[str, int]:
    """Each counted question's number as readers of the results see it (1, 2, …)."""
    return {q.id: i for i, q in enumerate(counted_questions(consultation), start=1)}


def rank(consultation: Consultation, counts: Tally) -> Results:
    """Options by count, ties in file order; an `ordered` question (a scale such as yes / no)
    keeps the file's order. Shares over those who saw each question."""
    out = []
    for q in counted_questions(consultation):
        seen = counts.seen.get(q.id, 0)
        ranked = [
            RankedOption(o.id, n, n / seen if seen else 0.0)
            for o in q.options
            for n in [counts.chosen.get((q.id, o.id), 0)]
        ]
        if not q.ordered:
            ranked.sort(key=lambda r: -r.count)  # stable: equal counts keep the file's order
        out.append(QuestionResult(q, seen, ranked))
    return Results(counts.respondents, out)


def several_answers(question: Question, lang: str, translator: Translator) -> str | None:
    """Under a question whose answers may be several: why the shares add up to more than 100 %."""
    if kind_of(question).max_choices(question) <= 1:
        return None
    return translator.gettext("Plusieurs réponses possibles", locale=lang)


def whose_answers(
    question: Question, consultation: Consultation, lang: str, translator: Translator
) -> str | None:
    """A conditional question counts the answers of those it was asked of: "Among those who
    answered “Yes” to question 6" (numbered as the results show it). Plain text."""
    when = question.when
    target = consultation.question(when.question) if when else None
    if when is None or target is None:
        return None
    _ = translator.gettext
    labels = [
        _("« {text} »", locale=lang).format(text=consultation.text(o.label, lang))
        for o in target.options
        if o.id in when.any
    ]
    answers = labels[0]
    if len(labels) > 1:
        answers = _("{options} ou {last}", locale=lang).format(
            options=", ".join(labels[:-1]), last=labels[-1]
        )
    number = question_numbers(consultation).get(target.id)
    return _(
        "Parmi celles et ceux qui ont répondu {answers} à la question {number}", locale=lang
    ).format(answers=answers, number=number)


async def compute(session: AsyncSession, consultation: Consultation) -> Results:
    return rank(consultation, await tally(session, consultation.id))


def results_intro(consultation: Consultation, lang: str) -> str:
    """The results phase's own text (title and description), sent before the chart and counts."""
    c = consultation
    phase = c.phase(PhaseKind.RESULTS)
    if phase is None:
        return ""
    parts = [f"📊 <b>{escape(c.text(phase.title, lang))}</b>"]
    if phase.description:
        parts.append(escape(c.text(phase.description, lang)).strip())
    return typeset("\n\n".join(parts), lang)


def results_heading(consultation: Consultation, lang: str, translator: Translator) -> str:
    """The chart album's caption and the summary's first line."""
    c = consultation
    heading = translator.gettext("📊 <b>Résultats : {title}</b>", locale=lang)
    return typeset(heading.format(title=escape(c.text(c.title, lang))), lang)


def summary_parts(
    results: Results, consultation: Consultation, lang: str, translator: Translator
) -> list[str]:
    """The ranked summary, split at question boundaries to fit Telegram's message limit."""
    c = consultation
    _ = translator.gettext
    count = translator.ngettext(
        "{n} répondant", "{n} répondants", results.respondents, locale=lang
    ).format(n=results.respondents)
    blocks = [f"{results_heading(c, lang, translator)}\n{count}"]
    if results.respondents == 0:
        blocks.append(_("Personne n’a encore envoyé ses réponses.", locale=lang))
    for i, qr in enumerate(results.questions, start=1):
        q = qr.question
        lines = [f"<b>{i}. {escape(c.text(q.text, lang))}</b>"]
        several = several_answers(q, lang, translator)
        if several:
            lines.append(f"<i>{escape(several)}</i>")
        whose = whose_answers(q, c, lang, translator)
        if whose or qr.seen != results.respondents:
            concerned = translator.ngettext(
                "({n} personne concernée)", "({n} personnes concernées)", qr.seen, locale=lang
            ).format(n=qr.seen)
            lines.append(f"<i>{escape(f'{whose} {concerned}' if whose else concerned)}</i>")
        for r in qr.options:
            option = qr.question.option(r.option_id)
            label = escape(c.text(option.text or option.label, lang)) if option else r.option_id
            lines.append(
                _("• {option} — {count} ({percent})", locale=lang).format(
                    option=label, count=r.count, percent=percent(r.share, lang)
                )
            )
        blocks.append("\n".join(lines))
    return pack([typeset(block, lang) for block in blocks], MESSAGE_LIMIT)


def free_text_block(
    consultation: Consultation,
    counts: dict[str, int],
    latest: dict[str, list[FreeText]],
    lang: str,
    translator: Translator,
) -> str:
    """For organisers: per text question, how many answered and the latest few answers."""
    c = consultation
    _ = translator.gettext
    questions = free_text_questions(c)
    if not questions:
        return ""
    lines = [_("🔒 <b>Réponses libres</b> (organisateurs seulement)", locale=lang)]
    for q in questions:
        n = counts.get(q.id, 0)
        lines.append("")
        lines.append(f"<b>{escape(c.text(q.text, lang))}</b>")
        lines.append(
            translator.ngettext("{n} réponse libre", "{n} réponses libres", n, locale=lang).format(
                n=n
            )
        )
        shown = latest.get(q.id, [])
        if shown:
            lines.append(_("Les plus récentes :", locale=lang))
            for answer in shown:
                text = answer.text if len(answer.text) <= 300 else answer.text[:299] + "…"
                lines.append(_("« {text} »", locale=lang).format(text=escape(text)))
    return typeset("\n".join(lines), lang)


def pack(blocks: list[str], limit: int) -> list[str]:
    """Join blocks with blank lines into as few messages as fit; split a huge block by lines."""
    pieces = (
        piece
        for block in blocks
        for piece in (
            [block]
            if len(block) <= limit
            else join_within((clip_line(line, limit) for line in block.split("\n")), limit)
        )
    )
    return join_within(pieces, limit, "\n\n")
