"""Counts -> ranked results, a summary text per language and a chart (PNG)."""

from __future__ import annotations

import io
import re
import textwrap
from dataclasses import dataclass
from html import escape

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation, Question
from bot.i18n import Translator
from storage.repositories.survey import Tally, tally

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


def rank(consultation: Consultation, counts: Tally) -> Results:
    """Options by count, ties in file order; shares over those who saw each question."""
    out = []
    for q in consultation.questions:
        if q.kind == "text":
            continue
        seen = counts.seen.get(q.id, 0)
        ranked = [
            RankedOption(o.id, n, n / seen if seen else 0.0)
            for o in q.options
            for n in [counts.chosen.get((q.id, o.id), 0)]
        ]
        ranked.sort(key=lambda r: -r.count)  # stable: equal counts keep the file's order
        out.append(QuestionResult(q, seen, ranked))
    return Results(counts.respondents, out)


async def compute(session: AsyncSession, consultation: Consultation) -> Results:
    return rank(consultation, await tally(session, consultation.id))


def summary_parts(
    results: Results, consultation: Consultation, lang: str, translator: Translator
) -> list[str]:
    """The ranked summary, split at question boundaries to fit Telegram's message limit."""
    c = consultation
    _ = translator.gettext
    header = _("📊 <b>Résultats : {title}</b>").format(title=escape(c.text(c.title, lang)))
    count = translator.ngettext("{n} répondant", "{n} répondants", results.respondents).format(
        n=results.respondents
    )
    blocks = [f"{header}\n{count}"]
    if results.respondents == 0:
        blocks.append(_("Personne n’a encore envoyé ses réponses."))
    for i, qr in enumerate(results.questions, start=1):
        lines = [f"<b>{i}. {escape(c.text(qr.question.text, lang))}</b>"]
        if qr.seen != results.respondents:
            lines.append(
                "<i>"
                + translator.ngettext(
                    "({n} personne concernée)", "({n} personnes concernées)", qr.seen
                ).format(n=qr.seen)
                + "</i>"
            )
        for r in qr.options:
            option = qr.question.option(r.option_id)
            label = escape(c.text(option.text or option.label, lang)) if option else r.option_id
            lines.append(f"• {label} ({r.count}) — {round(r.share * 100)} %")
        blocks.append("\n".join(lines))
    return pack(blocks, MESSAGE_LIMIT)


def pack(blocks: list[str], limit: int) -> list[str]:
    """Join blocks with blank lines into as few messages as fit; split a huge block by lines."""
    parts: list[str] = []
    current = ""
    for block in blocks:
        pieces = [block] if len(block) <= limit else _split_lines(block, limit)
        for piece in pieces:
            candidate = f"{current}\n\n{piece}" if current else piece
            if len(candidate) <= limit:
                current = candidate
            else:
                parts.append(current)
                current = piece
    if current:
        parts.append(current)
    return parts


def _split_lines(block: str, limit: int) -> list[str]:
    out, current = [], ""
    for line in block.split("\n"):
        line = line if len(line) <= limit else line[: limit - 1] + "…"
        candidate = f"{current}\n{line}" if current else line
        if len(candidate) <= limit:
            current = candidate
        else:
            out.append(current)
            current = line
    if current:
        out.append(current)
    return out


def chart_png(
    results: Results, consultation: Consultation, lang: str, translator: Translator
) -> bytes:
    """Horizontal bars per question, most chosen on top, labels wrapped for a phone screen."""
    import matplotlib

    matplotlib.use("Agg")
    from matplotlib import pyplot as plt

    c = consultation
    questions = results.questions
    heights = [max(1.2, 0.45 * len(q.options) + 0.8) for q in questions] or [1.0]
    fig, axes = plt.subplots(
        len(heights),
        1,
        figsize=(7.5, sum(heights)),
        dpi=110,
        gridspec_kw={"height_ratios": heights},
        squeeze=False,
    )
    for ax, qr in zip(axes[:, 0], questions, strict=False):
        labels = []
        for r in qr.options:
            option = qr.question.option(r.option_id)
            labels.append(textwrap.fill(c.text(option.label, lang) if option else r.option_id, 28))
        counts = [r.count for r in qr.options]
        positions = list(range(len(counts)))[::-1]
        ax.barh(positions, counts, color="#2c7fb8")
        ax.set_yticks(positions, labels, fontsize=9)
        title = re.sub(r"\s*\([^)]*\)\s*$", "", c.text(qr.question.text, lang))  # no "(several…)"
        ax.set_title(textwrap.fill(title, 70), fontsize=9.5, loc="left")
        top = max(counts, default=0)
        ax.set_xlim(0, max(1, top) * 1.15)
        for y, n in zip(positions, counts, strict=False):
            ax.text(n + max(1, top) * 0.01, y, str(n), va="center", fontsize=8.5)
        ax.xaxis.set_visible(False)
        for side in ("top", "right", "bottom"):
            ax.spines[side].set_visible(False)
    if not questions:
        axes[0, 0].axis("off")
    fig.suptitle(
        translator.gettext("Résultats : {title}", locale=lang).format(title=c.text(c.title, lang)),
        fontsize=11,
        x=0.01,
        ha="left",
    )
    fig.tight_layout()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png")
    plt.close(fig)
    return buffer.getvalue()
