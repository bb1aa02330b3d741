"""Results: SQL counts ranked like the seed's phase-2 text; summary per language; chart; the
seed read closely (a scale kept in its order, "several answers possible", whose answers a
follow-up counts, French no-break spaces)."""

from __future__ import annotations

from collections import Counter
from datetime import UTC, datetime

import pytest
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import PhaseKind, load_consultation
from bot.i18n import Translator
from bot.results.charts import chunks, question_figure, render_album
from bot.results.tally import Results, compute, pack, rank, results_intro, summary_parts
from storage.repositories.members import MemberRepository
from storage.repositories.tallies import Tally
from tests.support import DEFAULT_CONSULTATION, SEED_COUNTS, answer_survey, seed_answers

C = load_consultation(DEFAULT_CONSULTATION)
NOW = datetime(2020, 5, 16, 12, 0, tzinfo=UTC)


async def store(sessionmaker: async_sessionmaker[AsyncSession], submit: bool = True) -> None:
    async with sessionmaker() as session:
        for i, answers in enumerate(seed_answers(), start=100):
            await MemberRepository(session).get_or_create(i, f"m{i}")
            await answer_survey(session, C, i, answers, NOW, submit=submit)
        # A draft never counts.
        await MemberRepository(session).get_or_create(999, "draft")
        await answer_survey(session, C, 999, {"challenges": ["nuisances"]}, NOW, submit=False)


async def test_ranking_reproduces_the_seed(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await store(sessionmaker)
    async with sessionmaker() as session:
        results = await compute(session, C)
    assert results.respondents == 10
    by_id = {qr.question.id: qr for qr in results.questions}
    axes = by_id["strategy_axes"]
    assert [(r.option_id, r.count) for r in axes.options] == [
        ("local_approach", 7),
        ("communication", 6),
        ("professionals", 5),
        ("impact_evaluation", 4),
        ("local_economy", 1),
    ]
    # Ties keep the file's order: living_together (8) before strategy (8).
    assert [r.option_id for r in by_id["challenges"].options][:3] == [
        "living_together",
        "strategy",
        "inclusion",
    ]
    for qid, counts in SEED_COUNTS.items():
        assert {r.option_id: r.count for r in by_id[qid].options} == counts
    # The axes were asked of the eight who chose the joint strategy (the seed: "si vous
    # estimez utile…"), and are counted over them.
    assert axes.seen == 8 and axes.options[0].share == 7 / 8
    # The follow-up is counted over the four who saw it.
    focus = by_id["rehab_focus"]
    assert focus.seen == 4
    assert [(r.option_id, r.count, r.share) for r in focus.options] == [
        ("victims", 3, 0.75),
        ("authors", 1, 0.25),
    ]


async def test_summary_in_each_language(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await store(sessionmaker)
    async with sessionmaker() as session:
        results = await compute(session, C)
    translator = Translator()
    fr = "\n".join(summary_parts(results, C, "fr", translator))
    assert "10 répondants" in fr
    assert fr.index("L’approche locale, intégrale et intégrée") < fr.index("La communication")
    # Counts and percentages as each language writes them (Babel): "70 %" in French only.
    assert "intégrée de prévention et de sécurité — 7 (88\xa0%)" in fr
    assert "(4\xa0personnes concernées)" not in fr and "(4 personnes concernées)" in fr
    # No hint in the headers, no double brackets such as "(prévention des nuisances) (1)".
    assert "plusieurs choix" not in fr and ") (" not in fr
    assert "La diminution et la prévention des nuisances — 1 (10\xa0%)" in fr
    nl = "\n".join(summary_parts(results, C, "nl", translator))
    assert C.text(C.question("strategy_axes").text, "nl")[:40] in nl
    assert "— 7 (88%)" in nl and "10 deelnemers" in nl
    en = "\n".join(summary_parts(results, C, "en", translator))
    assert C.text(C.title, "en") in en
    assert "Support for victims — 3 (75%)" in en and ") (" not in en
    for part in summary_parts(results, C, "fr", translator):
        assert len(part) <= 4096


def test_results_phase_text_is_short_and_the_commentary_a_draft() -> None:
    """The data first, then the commentary: the phase's text only announces the data; the
    seed's phase-2 commentary (4 projects, ideas from 19/05/2020) is the file's draft, which
    the organisers approve once the survey has closed."""
    fr = results_intro(C, "fr")
    assert fr.startswith("📊 <b>Résultats du sondage")
    assert "4 projets" not in fr and "19/05/2020" not in fr
    phase = C.phase(PhaseKind.RESULTS)
    assert phase is not None and phase.commentary is not None
    assert "nous vous proposons 4 projets" in phase.commentary["fr"]
    assert "A partir du 19/05/2020" in phase.commentary["fr"]
    assert "4 projecten" in phase.commentary["nl"] and "Vanaf 19/05/2020" in phase.commentary["nl"]
    assert "From 19/05/2020" in phase.commentary["en"]


def test_pack_splits_at_block_boundaries() -> None:
    blocks = ["a" * 3000, "b" * 3000, "c" * 100]
    assert pack(blocks, 4096) == ["a" * 3000, "b" * 3000 + "\n\n" + "c" * 100]
    huge = "\n".join(["x" * 100] * 100)
    parts = pack([huge], 4096)
    assert all(len(p) <= 4096 for p in parts) and "".join(parts).count("x") == 10_000


def seed_results() -> Results:
    """The seed's counts, without a database (charts need only the counts)."""
    seen: Counter[str] = Counter()
    chosen: Counter[tuple[str, str]] = Counter()
    for answers in seed_answers():
        for question_id, choices in answers.items():
            seen[question_id] += 1
            chosen.update((question_id, option) for option in choices)
    return rank(C, Tally(len(seed_answers()), dict(seen), dict(chosen)))


def test_one_chart_per_question_readable_on_a_phone() -> None:
    results = seed_results()
    pngs = render_album(results, C, "nl", Translator())
    assert len(pngs) == len(results.questions) == 7
    for png in pngs:
        assert png.startswith(b"\x89PNG")
        width, height = int.from_bytes(png[16:20], "big"), int.from_bytes(png[20:24], "big")
        assert width == 1080 and 300 < height < 1280, (width, height)


@pytest.mark.parametrize("lang", ["fr", "nl", "en"])
def test_chart_titles_never_overlap_the_bars(lang: str) -> None:
    """Measured on the drawn figure: title above the notes, notes above the bars and their
    labels, the footer ("several answers possible") below them, every text inside the image;
    counts and percentages printed on the bars."""
    results = seed_results()
    for number, qr in enumerate(results.questions, start=1):
        fig = question_figure(qr, number, C, lang, Translator())
        fig.canvas.draw()
        renderer = fig.canvas.get_renderer()  # type: ignore[attr-defined]
        boxes = {t.get_gid(): t.get_window_extent(renderer) for t in fig.texts}
        title, note = boxes["title"], boxes["note"]
        ax = fig.axes[0]
        bars = ax.get_tightbbox(renderer)
        assert title.y0 > note.y1 and note.y0 > bars.y1, (lang, qr.question.id)
        footer = boxes.get("footer")
        assert (footer is not None) == (qr.question.kind == "multi"), (lang, qr.question.id)
        if footer is not None:
            assert footer.y1 < bars.y0, (lang, qr.question.id)
        values = [t.get_text() for t in ax.texts]
        assert len(values) == len(qr.options)
        assert values[0].startswith(f"{qr.options[0].count} (")
        for box in [*boxes.values(), bars, *(t.get_window_extent(renderer) for t in ax.texts)]:
            assert 0 <= box.x0 and box.x1 <= fig.bbox.width + 0.5, (lang, qr.question.id)
            assert 0 <= box.y0 and box.y1 <= fig.bbox.height + 0.5, (lang, qr.question.id)


def test_albums_hold_two_to_ten_photos() -> None:
    assert [len(r) for r in chunks(7)] == [7]
    assert [len(r) for r in chunks(10)] == [10]
    assert [len(r) for r in chunks(11)] == [6, 5]
    assert [len(r) for r in chunks(21)] == [7, 7, 7]
    assert [i for r in chunks(23) for i in r] == list(range(23))


async def test_no_respondents_yet(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        results = await compute(session, C)
    text = summary_parts(results, C, "fr", Translator())[0]
    assert "0 répondant" in text and "Personne n’a encore envoyé" in text
