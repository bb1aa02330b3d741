"""Results charts: one PNG per question, drawn for a phone screen, off the event loop, cached.

matplotlib takes a good fraction of a second per chart: a render on the event loop would
freeze every member's taps (and the outbox). `ChartCache` renders a language's album once,
in a worker thread, and keeps the PNGs and the `file_id`s Telegram returns until the counts
change (they are final once the survey is closed).
"""

from __future__ import annotations

import asyncio
import hashlib
import io
import textwrap
from collections.abc import Callable
from dataclasses import dataclass, field
from typing import TYPE_CHECKING

from bot.consultation import Consultation
from bot.i18n import Translator, percent, typeset
from bot.results.tally import QuestionResult, Results, several_answers, whose_answers

if TYPE_CHECKING:
    from matplotlib.axes import Axes
    from matplotlib.figure import Figure

    from bot.results.communes import ByCommune, CommuneView

# Telegram albums (sendMediaGroup) hold 2 to 10 photos.
ALBUM_MAX = 10
# 1080 px wide at 150 dpi: Telegram keeps up to 1280 px, a phone shows it full width.
WIDTH_IN = 7.2
DPI = 150
BAR_COLOR = "#2c7fb8"
TITLE_PT = 15
LABEL_PT = 13
VALUE_PT = 13
NOTE_PT = 11
LINE_IN = 0.29  # one line of 15-pt text, with its spacing
NOTE_LINE_IN = 0.22  # one line of 11-pt text, with its spacing
NOTE_COLOR = "#555555"
ROW_IN = 0.7  # one bar with its (two-line) label


@dataclass(frozen=True)
class ChartText:
    """What a question's chart says, already wrapped: the layout is computed from it."""

    title: list[str]  # "3. The question?", wrapped
    notes: list[str]  # under the title: who answered (and, for a follow-up, who was asked)
    labels: list[str]  # one per bar, top first: the option's label, wrapped (up to 3 lines)
    values: list[str]  # one per bar: "7 (70 %)"
    footer: list[str]  # under the bars: "several answers possible"


def chart_text(
    qr: QuestionResult,
    number: int,
    consultation: Consultation,
    lang: str,
    translator: Translator,
) -> ChartText:
    """The chart's texts in `lang`, typeset (French: no-break spaces before ? : ; !, so that a
    wrapped title never leaves a "?" alone on its line) and wrapped to the chart's width."""
    c = consultation
    title = textwrap.wrap(typeset(f"{number}. {c.text(qr.question.text, lang)}", lang), 48)
    answered = translator.ngettext(
        "{n} personne a répondu", "{n} personnes ont répondu", qr.seen, locale=lang
    ).format(n=qr.seen)
    notes = [typeset(answered, lang)]
    whose = whose_answers(qr.question, c, lang, translator)
    if whose:
        notes += textwrap.wrap(typeset(whose, lang), 64)
    labels = []
    for r in qr.options:
        option = qr.question.option(r.option_id)
        name = c.text(option.label, lang) if option else r.option_id
        labels.append("\n".join(textwrap.wrap(typeset(name, lang), 20)[:3]))
    values = [f"{r.count} ({percent(r.share, lang)})" for r in qr.options]
    several = several_answers(qr.question, lang, translator)
    footer = [typeset(several, lang)] if several else []
    return ChartText(title or [""], notes, labels, values, footer)


def question_chart(
    qr: QuestionResult,
    number: int,
    consultation: Consultation,
    lang: str,
    translator: Translator,
) -> bytes:
    """Horizontal bars, most chosen on top, "count (percent)" at each bar's end (PNG)."""
    return figure_png(question_figure(qr, number, consultation, lang, translator))


# zlib's fastest level: an album of 7 charts took 0.99 s of CPU at PIL's default (6), 0.63 s
# at 1, for 10 % more bytes; a large consultation redraws its albums at every refresh.
PNG_COMPRESS_LEVEL = 1


def figure_png(fig: Figure) -> bytes:
    """A chart as PNG on white."""
    buffer = io.BytesIO()
    fig.savefig(
        buffer, format="png", facecolor="white", pil_kwargs={"compress_level": PNG_COMPRESS_LEVEL}
    )
    return buffer.getvalue()


def question_figure(
    qr: QuestionResult,
    number: int,
    consultation: Consultation,
    lang: str,
    translator: Translator,
) -> Figure:
    """The layout is computed in inches from the number of text lines and options, so the
    title and notes sit above the bars and the footer below, whatever their length (they cannot
    overlap). The pyplot-free Figure API: safe to use from a worker thread. Each text carries
    its role as `gid` (title, note, footer)."""
    text = chart_text(qr, number, consultation, lang, translator)
    fig, bars_at = chart_frame(
        text.title, text.notes, text.footer, ROW_IN * max(1, len(qr.options))
    )
    ax = fig.add_axes(bars_at)
    draw_bars(ax, qr, text.labels, text.values)
    return fig


def draw_bars(
    ax: Axes,
    qr: QuestionResult,
    labels: list[str],
    values: list[str],
    color: str = BAR_COLOR,
) -> None:
    """One question's bars, first option on top, its value ("7 (70 %)") after each bar, the
    labels on the left. Kept apart from the figure so that another group's bars (a commune
    beside the network) can be drawn on the same axes."""
    counts = [r.count for r in qr.options]
    rows = max(1, len(counts))
    positions = list(range(len(counts)))[::-1]
    ax.barh(positions, counts, color=color, height=0.62)
    ax.set_yticks(positions, labels, fontsize=LABEL_PT)
    ax.set_ylim(-0.6, rows - 0.4)
    top = max(1, max(counts, default=0))
    ax.set_xlim(0, top * 1.45)  # room for "12 (100 %)" after the longest bar
    for y, count, value in zip(positions, counts, values, strict=True):
        ax.text(count + top * 0.02, y, value, va="center", fontsize=VALUE_PT)
    ax.xaxis.set_visible(False)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)


def chart_frame(
    title: list[str], notes: list[str], footer: list[str], bars_in: float, legend_in: float = 0.0
) -> tuple[Figure, tuple[float, float, float, float]]:
    """A chart's figure with its texts placed (the title, the notes, room for a legend of
    `legend_in` inches, the bars' `bars_in`, the footer), sized in inches so they never
    overlap; returns it with the bars' axes rectangle. Each text carries its role as `gid`."""
    from matplotlib.backends.backend_agg import FigureCanvasAgg
    from matplotlib.figure import Figure

    top_in = 0.2 + LINE_IN * len(title) + 0.12 + NOTE_LINE_IN * len(notes) + legend_in
    bottom_in = 0.25 + (0.1 + NOTE_LINE_IN * len(footer) if footer else 0)
    height_in = top_in + bars_in + bottom_in
    fig = Figure(figsize=(WIDTH_IN, height_in), dpi=DPI)
    FigureCanvasAgg(fig)
    fig.text(
        0.02,
        1 - 0.15 / height_in,
        "\n".join(title),
        fontsize=TITLE_PT,
        fontweight="bold",
        va="top",
        ha="left",
        linespacing=1.25,
        gid="title",
    )
    fig.text(
        0.02,
        1 - (top_in - legend_in - 0.08) / height_in,
        "\n".join(notes),
        fontsize=NOTE_PT,
        color=NOTE_COLOR,
        va="bottom",
        ha="left",
        linespacing=1.3,
        gid="note",
    )
    if footer:
        fig.text(
            0.02,
            0.12 / height_in,
            "\n".join(footer),
            fontsize=NOTE_PT,
            color=NOTE_COLOR,
            fontstyle="italic",
            va="bottom",
            ha="left",
            gid="footer",
        )
    left = 0.37  # room for labels wrapped at 20 characters
    return fig, (left, bottom_in / height_in, 0.96 - left, bars_in / height_in)


def render_album(
    results: Results, consultation: Consultation, lang: str, translator: Translator
) -> list[bytes]:
    """One chart per question, in the file's order (blocking: call it from a worker thread)."""
    return [
        question_chart(qr, i, consultation, lang, translator)
        for i, qr in enumerate(results.questions, start=1)
    ]


@dataclass
class Album:
    """A language's charts for one state of the counts, and their Telegram file_ids."""

    fingerprint: tuple[object, ...]
    pngs: list[bytes]
    file_ids: list[str | None]
    digests: list[bytes] = field(default_factory=list)

    def __post_init__(self) -> None:
        if not self.digests:
            self.digests = [_digest(png) for png in self.pngs]

    @property
    def uploaded(self) -> bool:
        return all(self.file_ids)


def _digest(png: bytes) -> bytes:
    return hashlib.sha256(png).digest()


Renderer = Callable[[Results, Consultation, str, Translator], list[bytes]]
# (a commune's view, the consultation, the language, the translator, the commune's name)
CommuneRenderer = Callable[["CommuneView", Consultation, str, Translator, str], list[bytes]]
# An album's key: its language and the commune whose bars it shows beside the network's
# (None: the network's alone).
AlbumKey = tuple[str, str | None]


@dataclass
class ChartCache:
    """Per language (and commune shown beside the network): the album of the latest counts.
    Rendered once, in a thread."""

    render: Renderer = render_album
    # bot/results/commune_charts.py's render_commune_album unless a test gives another.
    render_commune: CommuneRenderer | None = None
    albums: dict[AlbumKey, Album] = field(default_factory=dict)
    renders: int = 0
    # A chart's bytes (digest) -> the file_id Telegram gave it, whoever uploaded it (/results
    # or the outbox's broadcast): an unchanged question's chart is never uploaded twice.
    uploaded: dict[bytes, str] = field(default_factory=dict)
    _render_locks: dict[AlbumKey, asyncio.Lock] = field(default_factory=dict)
    _upload_locks: dict[AlbumKey, asyncio.Lock] = field(default_factory=dict)
    # The albums asked for since new results were last prepared: those drawn ahead next time.
    _asked: set[AlbumKey] = field(default_factory=set)
    # Per key, the album before the latest: /results serves the previous results while the
    # next ones' albums are drawn ahead (`prepare`), and without it drew them again.
    _previous: dict[AlbumKey, Album] = field(default_factory=dict)

    async def album(
        self,
        results: Results,
        consultation: Consultation,
        lang: str,
        translator: Translator,
        view: CommuneView | None = None,
    ) -> Album:
        """The network's album (`results`), or with a `view` whose commune is shown, that
        commune's bars beside the network's."""
        self._asked.add((lang, view.key if view is not None else None))
        return await self._draw(results, consultation, lang, translator, view)

    async def _draw(
        self,
        results: Results,
        consultation: Consultation,
        lang: str,
        translator: Translator,
        view: CommuneView | None,
    ) -> Album:
        commune = view.key if view is not None else None
        key: AlbumKey = (lang, commune)
        # The network's album is one, whoever asks: with or without a view.
        fingerprint = (
            results.fingerprint() if view is None or commune is None else view.fingerprint()
        )
        cached = self._kept(key, fingerprint)
        if cached is not None:
            return cached
        async with self._render_locks.setdefault(key, asyncio.Lock()):
            cached = self._kept(key, fingerprint)
            if cached is not None:
                return cached  # rendered by the member who was first
            if view is not None and commune is not None:
                known = consultation.commune(commune)
                name = known.label(lang, consultation.source_language) if known else commune
                render_commune = self.render_commune or _commune_renderer()
                pngs = await asyncio.to_thread(
                    render_commune, view, consultation, lang, translator, name
                )
            else:
                pngs = await asyncio.to_thread(self.render, results, consultation, lang, translator)
            self.renders += 1
            album = Album(fingerprint, pngs, [None] * len(pngs))
            album.file_ids = [self.uploaded.get(d) for d in album.digests]
            latest = self.albums.get(key)
            if latest is not None:
                self._previous[key] = latest
            self.albums[key] = album
            self._forget_old_uploads()
            return album

    def _kept(self, key: AlbumKey, fingerprint: object) -> Album | None:
        for album in (self.albums.get(key), self._previous.get(key)):
            if album is not None and album.fingerprint == fingerprint:
                return album
        return None

    async def prepare(
        self, found: ByCommune, consultation: Consultation, translator: Translator
    ) -> None:
        """New results (bot/results/service.py): the albums asked for since the previous
        ones drawn again for them (the network's in each language if none was), before
        /results takes them. Only those: a network's hundred communes' albums, each redrawn
        at every refresh, would keep a core busy; one not asked for lately waits for its
        asker."""
        keys = sorted(self._asked, key=str) or [(lang, None) for lang in consultation.languages]
        self._asked = set()
        for lang, commune in keys:
            await self._draw(found.network, consultation, lang, translator, found.view(commune))

    def _forget_old_uploads(self, keep: int = 200) -> None:
        """While the survey is open the counts keep changing: forget the file_ids of charts
        no album shows any more, so the map stays small."""
        if len(self.uploaded) <= keep:
            return
        current = {d for album in self._all() for d in album.digests}
        self.uploaded = {d: f for d, f in self.uploaded.items() if d in current}

    def _all(self) -> list[Album]:
        return [*self.albums.values(), *self._previous.values()]

    def upload_lock(self, lang: str, commune: str | None = None) -> asyncio.Lock:
        """Held while an album's photos are first uploaded: the others wait, then reuse them."""
        return self._upload_locks.setdefault((lang, commune), asyncio.Lock())

    def remember(self, png: bytes, file_id: str) -> None:
        """Telegram holds this chart now: every album showing it re-sends it by file_id."""
        digest = _digest(png)
        self.uploaded[digest] = file_id
        for album in self._all():
            for i, d in enumerate(album.digests):
                if d == digest:
                    album.file_ids[i] = file_id


def _commune_renderer() -> CommuneRenderer:
    # Imported when first needed: bot/results/commune_charts.py draws with this module's sizes.
    from bot.results.commune_charts import render_commune_album

    return render_commune_album


def chunks(count: int, size: int = ALBUM_MAX) -> list[range]:
    """Indexes of `count` photos in albums of at most `size`, none of a single photo if
    avoidable (sendMediaGroup needs two): 11 -> 6 + 5, not 10 + 1."""
    if count <= size:
        return [range(count)] if count else []
    groups = -(-count // size)
    base, extra = divmod(count, groups)
    out, start = [], 0
    for g in range(groups):
        n = base + (1 if g < extra else 0)
        out.append(range(start, start + n))
        start += n
    return out
