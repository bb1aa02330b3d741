"""Results: SQL counts ranked like the seed's phase-2 text; summary per language; chart."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import load_consultation
from bot.i18n import Translator
from bot.results import chart_png, compute, pack, summary_parts
from storage.repositories.members import MemberRepository
from storage.repositories.survey import SurveyRepository
from tests.support import DEFAULT_CONSULTATION, SEED_COUNTS, seed_answers

C = load_consultation(DEFAULT_CONSULTATION)
NOW = datetime(2020, 5, 16, 12, 0, tzinfo=UTC)


async def store(sessionmaker: async_sessionmaker[AsyncSession], submit: bool = True) -> None:
    async with sessionmaker() as session:
        for i, answers in enumerate(seed_answers(), start=100):
            await MemberRepository(session).get_or_create(i, f"m{i}")
            repo = SurveyRepository(session)
            response = await repo.get_or_create(C.id, i)
            for qid, choices in answers.items():
                await repo.save_answer(response, qid, choices, None)
            if submit:
                await repo.submit(response, NOW)
        # A draft never counts.
        await MemberRepository(session).get_or_create(999, "draft")
        draft = await SurveyRepository(session).get_or_create(C.id, 999)
        await SurveyRepository(session).save_answer(draft, "challenges", ["nuisances"], None)
        await session.commit()


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
    assert "(7) — 70 %" in fr
    assert "(4 personnes concernées)" in fr
    nl = "\n".join(summary_parts(results, C, "nl", translator))
    assert C.text(C.question("strategy_axes").text, "nl")[:40] in nl
    en = "\n".join(summary_parts(results, C, "en", translator))
    assert C.text(C.title, "en") in en
    for part in summary_parts(results, C, "fr", translator):
        assert len(part) <= 4096


def test_pack_splits_at_block_boundaries() -> None:
    blocks = ["a" * 3000, "b" * 3000, "c" * 100]
    assert pack(blocks, 4096) == ["a" * 3000, "b" * 3000 + "\n\n" + "c" * 100]
    huge = "\n".join(["x" * 100] * 100)
    parts = pack([huge], 4096)
    assert all(len(p) <= 4096 for p in parts) and "".join(parts).count("x") == 10_000


async def test_chart_is_a_png(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    await store(sessionmaker)
    async with sessionmaker() as session:
        results = await compute(session, C)
    png = chart_png(results, C, "nl", Translator())
    assert png.startswith(b"\x89PNG") and len(png) > 10_000


async def test_no_respondents_yet(sessionmaker: async_sessionmaker[AsyncSession]) -> None:
    async with sessionmaker() as session:
        results = await compute(session, C)
    text = summary_parts(results, C, "fr", Translator())[0]
    assert "0 répondant" in text and "Personne n’a encore envoyé" in text
