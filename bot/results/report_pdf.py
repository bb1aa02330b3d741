"""The council's report as a PDF: A4 pages drawn by matplotlib (its own PDF backend, no other
dependency), a cover with the dates, the respondents and the commentary, then one page per
counted question: its chart and a table of the counts.

Pure and blocking (a few seconds for a whole report): call `render_pdf` from a worker thread.
Every text arrives already translated and formatted in a `ReportTexts`: this module draws.
"""

from __future__ import annotations

import io
import logging
import re
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from matplotlib.figure import Figure

A4_IN = (8.27, 11.69)
MARGIN_IN = 0.8
TEXT_WIDTH_IN = A4_IN[0] - 2 * MARGIN_IN
NETWORK_COLOR = "#2c7fb8"
COMMUNE_COLOR = "#e6862a"
GREY = "#555555"
RULE = "#cccccc"
# Points per size; a line is 1.45 times its size (in points, 72 to the inch).
TITLE_PT, HEADING_PT, BODY_PT, SMALL_PT = 20, 14, 11, 9
LINE = 1.45 / 72


def _measure() -> Callable[[str, float, str], float]:
    """A text's width in inches as the PDF draws it (DejaVu Sans, `pt`, `weight`): measured
    by a renderer of its own (render_pdf may run in several threads)."""
    from matplotlib.backends.backend_agg import RendererAgg
    from matplotlib.font_manager import FontProperties

    renderer = RendererAgg(10, 10, 72)  # 72 dpi: widths in points

    def width_in(text: str, pt: float, weight: str) -> float:
        font = FontProperties(size=pt, weight=weight)
        return renderer.get_text_width_height_descent(text, font, ismath=False)[0] / 72

    return width_in


@dataclass(frozen=True)
class ReportRow:
    """One option of a question: its label on the chart, its full wording in the table, and
    the figures as the reader writes them ("7", "70 %")."""

    label: str
    text: str
    count: int
    share: float
    count_text: str
    share_text: str
    # The commune's, when the report shows one beside the network's.
    local_count: int | None = None
    local_share: float | None = None
    local_count_text: str | None = None
    local_share_text: str | None = None


@dataclass(frozen=True)
class ReportQuestion:
    heading: str  # "3. Which …"
    note: str  # "10 people answered" (and the commune's, when shown)
    rows: list[ReportRow]
    remark: str | None = None  # e.g. "several answers possible"
    paired: bool = False  # the commune's figures beside the network's
    withheld: str | None = None  # why the commune's are not shown for this question


@dataclass(frozen=True)
class ReportTexts:
    """Everything the pages say, in the reader's language."""

    organiser: str
    title: str
    subtitle: str
    facts: list[str]  # dates, respondents …: one line each
    introduction: list[str]  # the results phase's own text, paragraphs
    commentary_heading: str
    commentary: list[str]  # the organisers' approved commentary, paragraphs (or none)
    generated: str
    page_label: str  # "Page {page} / {pages}"
    columns: tuple[str, str, str]  # answer, count, share
    questions: list[ReportQuestion] = field(default_factory=list)
    # With a commune beside the network: the two series' names (commune, network).
    series: tuple[str, str] | None = None
    notice: str | None = None  # e.g. why the commune's figures are not shown


class _Page:
    """An A4 figure with a cursor that moves down from the top margin, in inches."""

    def __init__(self) -> None:
        from matplotlib.backends.backend_agg import FigureCanvasAgg
        from matplotlib.figure import Figure

        self.fig: Figure = Figure(figsize=A4_IN)
        FigureCanvasAgg(self.fig)
        self.y = MARGIN_IN

    @property
    def room(self) -> float:
        return A4_IN[1] - MARGIN_IN - 0.3 - self.y  # the footer's line kept free

    def _fy(self, y_in: float) -> float:
        return 1 - y_in / A4_IN[1]

    def text(
        self,
        lines: list[str],
        pt: float,
        weight: str = "normal",
        color: str = "black",
        indent: float = 0.0,
        after: float = 0.08,
    ) -> None:
        for line in lines:
            self.fig.text(
                (MARGIN_IN + indent) / A4_IN[0],
                self._fy(_baseline(self.y, pt)),
                line,
                fontsize=pt,
                fontweight=weight,
                color=color,
                va="baseline",
                ha="left",
            )
            self.y += pt * LINE
        self.y += after

    def rule(self, after: float = 0.12) -> None:
        self.fig.add_artist(
            _line(MARGIN_IN, A4_IN[0] - MARGIN_IN, self._fy(self.y + 0.02), self.fig)
        )
        self.y += after

    def footer(self, text: str) -> None:
        self.fig.text(
            0.5, MARGIN_IN / 2 / A4_IN[1], text, fontsize=SMALL_PT, color=GREY, ha="center"
        )


def _baseline(y_in: float, pt: float) -> float:
    """Where a line whose top is at `y_in` sits. Texts are placed by their baseline: "top"
    would align each text's own glyphs (an accent, a descender), and "Réseau" would sit lower
    than "Namur" beside it."""
    return y_in + 0.8 * pt / 72


def _line(x0_in: float, x1_in: float, fy: float, fig: Figure):  # type: ignore[no-untyped-def]
    from matplotlib.lines import Line2D

    return Line2D(
        [x0_in / A4_IN[0], x1_in / A4_IN[0]],
        [fy, fy],
        color=RULE,
        lw=0.8,
        transform=fig.transFigure,
    )


def wrap(
    text: str, pt: float, width_in: float = TEXT_WIDTH_IN, weight: str = "normal"
) -> list[str]:
    """Lines of `text` that fit `width_in`, measured (a bold title is wider than a count of
    characters says). Breaks at plain spaces only: a French no-break space holds."""
    measure = _measure()
    lines: list[str] = []
    line = ""
    for word in re.split(r"[ \t\r\n]+", text.strip()):
        candidate = f"{line} {word}" if line else word
        if line and measure(candidate, pt, weight) > width_in:
            lines.append(line)
            line = word
        else:
            line = candidate
    return [*lines, line]


def _cover(texts: ReportTexts) -> list[_Page]:
    pages = [_Page()]
    page = pages[0]
    page.text([texts.organiser], SMALL_PT + 1, color=GREY, after=0.15)
    page.text(wrap(texts.title, TITLE_PT, weight="bold"), TITLE_PT, weight="bold", after=0.1)
    page.text(wrap(texts.subtitle, HEADING_PT), HEADING_PT, color=GREY, after=0.2)
    page.rule()
    for fact in texts.facts:
        page.text(wrap(fact, BODY_PT + 1), BODY_PT + 1, after=0.04)
    if texts.notice:
        page.y += 0.1
        page.text(wrap(texts.notice, BODY_PT), BODY_PT, color=GREY)
    page.y += 0.15
    page.rule()
    sections = [(None, texts.introduction), (texts.commentary_heading, texts.commentary)]
    for heading, paragraphs in sections:
        if not paragraphs:
            continue
        if heading:
            page.y += 0.1
            page.text([heading], HEADING_PT, weight="bold", after=0.12)
        for paragraph in paragraphs:
            for line in wrap(paragraph, BODY_PT):
                if page.room < BODY_PT * LINE:  # a long commentary goes on over the next page
                    page = _Page()
                    pages.append(page)
                page.text([line], BODY_PT, after=0.0)
            page.y += 0.1
    pages[-1].text([texts.generated], SMALL_PT, color=GREY, after=0.0)
    return pages


def _question(q: ReportQuestion, texts: ReportTexts) -> _Page:
    page = _Page()
    page.text(wrap(q.heading, HEADING_PT, weight="bold"), HEADING_PT, weight="bold", after=0.04)
    page.text(wrap(q.note, BODY_PT), BODY_PT, color=GREY, after=0.0)
    for said in (q.remark, q.withheld):
        if said:
            page.text(wrap(said, BODY_PT), BODY_PT, color=GREY, after=0.0)
    page.y += 0.15
    if q.paired and texts.series is not None:
        _legend(page, texts.series)
    chart_in = min(4.6, 0.42 * len(q.rows) * (1.6 if q.paired else 1) + 0.5)
    _chart(page, q, chart_in)
    page.y += chart_in + 0.3
    _table(page, q, texts)
    return page


def _legend(page: _Page, series: tuple[str, str]) -> None:
    """The two series' names over the chart, left-aligned with the bars' labels."""
    from matplotlib.patches import Patch

    handles = [
        Patch(color=COMMUNE_COLOR, label=series[0]),
        Patch(color=NETWORK_COLOR, label=series[1]),
    ]
    page.fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(MARGIN_IN / A4_IN[0], page._fy(page.y)),
        ncol=2,
        frameon=False,
        fontsize=SMALL_PT + 1,
        handlelength=1.2,
        borderaxespad=0.0,
        borderpad=0.0,
    )
    page.y += 0.35


def _chart(page: _Page, q: ReportQuestion, height_in: float) -> None:
    """Horizontal bars, "7 (70 %)" at each bar's end: the network's counts, or with the
    commune's (on top) each group's shares, so that groups of any size compare."""
    label_in = 2.3
    ax = page.fig.add_axes(
        (
            (MARGIN_IN + label_in) / A4_IN[0],
            1 - (page.y + height_in) / A4_IN[1],
            (TEXT_WIDTH_IN - label_in - 0.1) / A4_IN[0],
            height_in / A4_IN[1],
        )
    )
    n = max(1, len(q.rows))
    positions = list(range(n))[::-1]
    labels = ["\n".join(textwrap.wrap(r.label, 28)[:2]) for r in q.rows]
    size = SMALL_PT + 0.5
    if not q.paired:
        values = [r.count for r in q.rows]
        top = max(1, max(values, default=0))
        ax.barh(positions[: len(values)], values, color=NETWORK_COLOR, height=0.62)
        for y, r in zip(positions, q.rows, strict=False):
            ax.text(
                r.count + top * 0.02, y, f"{r.count_text} ({r.share_text})", va="center",
                fontsize=size,
            )  # fmt: skip
        ax.set_xlim(0, top * 1.35)
    else:
        top = max([r.share for r in q.rows] + [r.local_share or 0.0 for r in q.rows] + [0.01])
        for y, r in zip(positions, q.rows, strict=False):
            bars = [
                (y + 0.2, r.local_share or 0.0, r.local_count_text, r.local_share_text, True),
                (y - 0.2, r.share, r.count_text, r.share_text, False),
            ]
            for at, share, count, share_text, mine in bars:
                color = COMMUNE_COLOR if mine else NETWORK_COLOR
                ax.barh(at, share, color=color, height=0.36)
                ax.text(
                    share + top * 0.02, at, f"{count or '–'} ({share_text or '–'})", va="center",
                    fontsize=size - 0.5,
                )  # fmt: skip
        ax.set_xlim(0, top * 1.4)  # room for "12 (100 %)" after the longest bar
    ax.set_yticks(positions[: len(labels)], labels, fontsize=size)
    ax.set_ylim(-0.6, n - 0.4)
    ax.xaxis.set_visible(False)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def _table(page: _Page, q: ReportQuestion, texts: ReportTexts) -> None:
    """Full wording of each option, then the figures, right-aligned in their columns."""
    local = q.paired and texts.series is not None
    figures = 4 if local else 2
    col_in, gap_in = 0.75, 0.3  # a gap keeps the commune's share apart from the network's count
    text_in = TEXT_WIDTH_IN - figures * col_in - (gap_in if local else 0)
    right = [
        MARGIN_IN + text_in + (i + 1) * col_in + (gap_in if i >= 2 else 0) for i in range(figures)
    ]
    heads = list(texts.columns[1:]) * (2 if local else 1)
    fy = page._fy
    head_pt = SMALL_PT + 1
    if local:  # each series' name over its pair of columns, underlined across both
        for k, name in enumerate(texts.series or ()):
            x0, x1 = right[2 * k] - col_in + 0.15, right[2 * k + 1]
            page.fig.text(
                (x0 + x1) / 2 / A4_IN[0], fy(_baseline(page.y, head_pt)), name, fontsize=head_pt,
                fontweight="bold", va="baseline", ha="center",
            )  # fmt: skip
            page.fig.add_artist(_line(x0, x1, fy(page.y + head_pt * LINE + 0.02), page.fig))
        page.y += head_pt * LINE + 0.08
    page.fig.text(
        MARGIN_IN / A4_IN[0], fy(_baseline(page.y, head_pt)), texts.columns[0], fontsize=head_pt,
        fontweight="bold", va="baseline",
    )  # fmt: skip
    for x, head in zip(right, heads, strict=True):
        page.fig.text(
            x / A4_IN[0], fy(_baseline(page.y, head_pt)), head, fontsize=head_pt,
            fontweight="bold", va="baseline", ha="right",
        )  # fmt: skip
    page.y += head_pt * LINE + 0.04
    page.rule(after=0.08)
    pt = BODY_PT - 1
    for r in q.rows:
        lines = wrap(r.text, pt, text_in - 0.15)[:4]
        values = (
            [r.local_count_text or "–", r.local_share_text or "–", r.count_text, r.share_text]
            if local
            else [r.count_text, r.share_text]
        )
        for i, line in enumerate(lines):
            page.fig.text(
                MARGIN_IN / A4_IN[0], fy(_baseline(page.y + i * pt * 1.3 / 72, pt)), line,
                fontsize=pt, va="baseline",
            )  # fmt: skip
        for x, value in zip(right, values, strict=True):
            page.fig.text(
                x / A4_IN[0], fy(_baseline(page.y, pt)), value, fontsize=pt, va="baseline",
                ha="right",
            )  # fmt: skip
        page.y += len(lines) * pt * 1.3 / 72 + 0.1
        if page.room <= 0:
            break  # never reached with the file's option bounds; a cut rather than an overlap


def render_pdf(texts: ReportTexts) -> bytes:
    """The whole report (blocking: run it in a worker thread)."""
    import matplotlib
    from matplotlib.backends.backend_pdf import PdfPages

    # fontTools logs each font subset at INFO: dozens of lines per report in the bot's log.
    logging.getLogger("fontTools").setLevel(logging.WARNING)

    pages = _cover(texts) + [_question(q, texts) for q in texts.questions]
    buffer = io.BytesIO()
    # TrueType fonts (not Type 3): the text stays selectable and searchable in any reader.
    with matplotlib.rc_context({"pdf.fonttype": 42}):
        with PdfPages(buffer, metadata={"Title": texts.title, "Creator": "ConsultBot"}) as pdf:
            for number, page in enumerate(pages, start=1):
                page.footer(texts.page_label.format(page=number, pages=len(pages)))
                pdf.savefig(page.fig)
    return buffer.getvalue()
