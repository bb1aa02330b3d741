"""A commune's charts: per question, the commune's bars beside the network's (grouped
horizontal bars, percentages of each group, a legend naming both), for its officials.

Drawn like bot/results/charts.py (the pyplot-free Figure API, a layout computed in inches,
so texts never overlap the bars), from a worker thread through the ChartCache."""

from __future__ import annotations

import textwrap
from typing import TYPE_CHECKING

from bot.consultation import Consultation
from bot.i18n import Translator, percent, typeset
from bot.results.charts import (
    LABEL_PT,
    NOTE_PT,
    VALUE_PT,
    chart_frame,
    chart_text,
    figure_png,
)
from bot.results.communes import CommuneView, withheld_reason
from bot.results.tally import QuestionResult

if TYPE_CHECKING:
    from matplotlib.figure import Figure

COMMUNE_COLOR = "#d95f0e"  # the commune: warm, in front
NETWORK_COLOR = "#2c7fb8"  # the network: the colour of the network's own charts
NOTE_COLOR = "#555555"
NOTE_LINE_IN = 0.22
PAIR_IN = 0.95  # one option: two bars and a label of up to three lines
BAR = 0.36  # each bar's thickness, in rows


def pair_notes(
    network: QuestionResult,
    local: QuestionResult | None,
    commune: str,
    lang: str,
    translator: Translator,
) -> list[str]:
    """Who answered, in each group; or why the commune's bars are missing (typeset)."""
    if local is None:
        answered = translator.ngettext(
            "Réseau : {n} personne a répondu",
            "Réseau : {n} personnes ont répondu",
            network.seen,
            locale=lang,
        ).format(n=network.seen)
        withheld = withheld_reason(commune, lang, translator)
        return [typeset(answered, lang), *textwrap.wrap(withheld, 64)]
    answered = translator.ngettext(
        "{commune} : {local} · réseau : {n} personne a répondu",
        "{commune} : {local} · réseau : {n} personnes ont répondu",
        network.seen,
        locale=lang,
    ).format(commune=commune, local=local.seen, n=network.seen)
    return textwrap.wrap(typeset(answered, lang), 64)


def pair_figure(
    network: QuestionResult,
    local: QuestionResult | None,
    number: int,
    consultation: Consultation,
    commune: str,
    lang: str,
    translator: Translator,
) -> Figure:
    """The commune's bar (on top) and the network's for each option, in the network's order;
    lengths are shares of each group, "7 (58 %)" at each bar's end. Without `local` (too few
    of the commune answered this question), the network's bars only, and a note says why."""
    from matplotlib.patches import Patch

    # The network's chart texts (bot/results/charts.py): title, whose answers a follow-up
    # counts, "several answers possible", labels; the counts' note is the two groups'.
    text = chart_text(network, number, consultation, lang, translator)
    title = text.title
    notes = pair_notes(network, local, commune, lang, translator)
    notes += text.notes[1:]  # after "n people answered": whose answers, if a follow-up
    rows = max(1, len(network.options))
    legend_in = 0.35
    fig, bars_at = chart_frame(title, notes, text.footer, PAIR_IN * rows, legend_in)
    top_in = fig.get_figheight() - (bars_at[1] + bars_at[3]) * fig.get_figheight()
    height_in = fig.get_figheight()
    network_name = translator.gettext("réseau", locale=lang)
    handles = [Patch(color=NETWORK_COLOR, label=network_name)]
    if local is not None:
        handles.insert(0, Patch(color=COMMUNE_COLOR, label=commune))
    fig.legend(
        handles=handles,
        loc="upper left",
        bbox_to_anchor=(0.01, 1 - (top_in - legend_in + 0.02) / height_in),
        ncol=2,
        frameon=False,
        fontsize=NOTE_PT,
        handlelength=1.2,
    )
    ax = fig.add_axes(bars_at)
    own = {r.option_id: r for r in local.options} if local is not None else {}
    positions = list(range(rows))[::-1]
    top = max([r.share for r in network.options] + [r.share for r in own.values()] + [0.01])
    labels = text.labels
    for y, r in zip(positions, network.options, strict=False):
        bars = [(y - BAR / 2, r, NETWORK_COLOR)]
        mine = own.get(r.option_id)
        if mine is not None:
            bars = [(y + BAR / 2, mine, COMMUNE_COLOR), (y - BAR / 2, r, NETWORK_COLOR)]
        else:
            bars = [(y, r, NETWORK_COLOR)]
        for at, value, color in bars:
            ax.barh(at, value.share, color=color, height=BAR * 0.92)
            ax.text(
                value.share + top * 0.02,
                at,
                f"{value.count} ({percent(value.share, lang)})",
                va="center",
                fontsize=VALUE_PT - 2,
            )
    ax.set_yticks(positions[: len(labels)], labels, fontsize=LABEL_PT)
    ax.set_ylim(-0.6, rows - 0.4)
    ax.set_xlim(0, top * 1.5)  # room for "12 (100 %)" after the longest bar
    ax.xaxis.set_visible(False)
    ax.tick_params(axis="y", length=0)
    for side in ("top", "right", "bottom"):
        ax.spines[side].set_visible(False)
    return fig


def render_commune_album(
    view: CommuneView,
    consultation: Consultation,
    lang: str,
    translator: Translator,
    commune: str,
) -> list[bytes]:
    """One chart per question, the commune's bars beside the network's (blocking: call it
    from a worker thread). `commune` is the commune's name in `lang`."""
    assert view.local is not None
    out = []
    for i, (network, local) in enumerate(
        zip(view.network.questions, view.local.questions, strict=True), start=1
    ):
        shown = None if network.question.id in view.withheld else local
        out.append(
            figure_png(pair_figure(network, shown, i, consultation, commune, lang, translator))
        )
    return out
