"""The counts the results read (tally_counts, kept by the database's triggers of migration
0015) always equal the submitted answers counted afresh: through submissions, drafts, edits
while the survey is open, hidden answers, commune changes, erasures, and on PostgreSQL a
crowd doing all of it at once."""

from __future__ import annotations

import asyncio
import random
from datetime import timedelta
from pathlib import Path

import pytest
from sqlalchemy import delete, func, literal, select, text, union_all
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import Consultation, PhaseKind
from bot.survey.service import SurveyService
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.models import AnswerChoice, Member, QuestionAnswer, Response, TallyCount
from storage.repositories.communes import CommuneRepository
from storage.repositories.members import MemberRepository, erase
from storage.repositories.tallies import tally, tally_by_commune
from tests.support import (
    answer_survey,
    consultation_with_notes,
    postgres_database,
    seed_answers,
    unique_name,
)

Counts = dict[tuple[str, str, str], int]
COMMUNES = ("namur", "liege", None)


@pytest.fixture
def consultation() -> Consultation:
    return consultation_with_notes()


async def kept(session: AsyncSession, cid: str) -> Counts:
    rows = await session.execute(
        select(
            TallyCount.commune, TallyCount.question_id, TallyCount.option_id, TallyCount.n
        ).where(TallyCount.consultation_id == cid, TallyCount.n != 0)
    )
    return {(c, q, o): n for c, q, o, n in rows}


async def recounted(session: AsyncSession, cid: str) -> Counts:
    """The submitted answers counted from scratch, as results were before the counts."""
    submitted = (Response.consultation_id == cid) & (Response.status == "submitted")
    commune = func.coalesce(Member.commune, "")
    parts = union_all(
        select(commune, literal(""), literal(""))
        .select_from(Response)
        .join(Member, Member.id == Response.member_id)
        .where(submitted),
        select(commune, QuestionAnswer.question_id, literal(""))
        .select_from(QuestionAnswer)
        .join(Response, Response.id == QuestionAnswer.response_id)
        .join(Member, Member.id == Response.member_id)
        .where(submitted),
        select(commune, QuestionAnswer.question_id, literal("*"))
        .select_from(QuestionAnswer)
        .join(Response, Response.id == QuestionAnswer.response_id)
        .join(Member, Member.id == Response.member_id)
        .where(submitted & (QuestionAnswer.text != "")),
        select(commune, AnswerChoice.question_id, AnswerChoice.option_id)
        .select_from(AnswerChoice)
        .join(Response, Response.id == AnswerChoice.response_id)
        .join(Member, Member.id == Response.member_id)
        .where(submitted),
    ).subquery()
    columns = list(parts.c)
    rows = await session.execute(select(*columns, func.count()).group_by(*columns))
    return {(c, q, o): n for c, q, o, n in rows}


def survey_times(consultation: Consultation) -> list:
    survey = consultation.phase(PhaseKind.SURVEY)
    assert survey is not None
    return [survey.starts + timedelta(hours=1, seconds=s) for s in range(10_000)]


def plan(rnd: random.Random, with_notes: bool) -> dict[str, list[str] | str]:
    answers: dict[str, list[str] | str] = dict(rnd.choice(seed_answers()))
    if with_notes and "inclusion" in answers["challenges"]:
        answers["notes"] = rnd.choice(["Plus de bancs", "", "Éclairage"])
    return answers


async def test_counts_follow_every_change_of_the_answers(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation
) -> None:
    rnd = random.Random(15)
    times = iter(survey_times(consultation))
    cid = consultation.id
    members = list(range(1, 13))
    async with sessionmaker() as session:
        for m in members:
            await MemberRepository(session).get_or_create(m, f"m{m}")
        await session.commit()
        for m in members:
            await CommuneRepository(session).save(m, rnd.choice(COMMUNES), next(times))
        # Half submit, a quarter keep a draft.
        for m in members[:6]:
            await answer_survey(session, consultation, m, plan(rnd, True), next(times))
        for m in members[6:9]:
            await answer_survey(session, consultation, m, plan(rnd, True), next(times), False)
        assert await kept(session, cid) == await recounted(session, cid)
        assert (await tally(session, cid)).respondents == 6

        service = SurveyService(session, consultation)
        challenges = consultation.question("challenges")
        notes = consultation.question("notes")
        assert challenges is not None and notes is not None
        for step in range(60):
            m = rnd.choice(members)
            action = rnd.randrange(6)
            now = next(times)
            if action == 0:  # an edit, submitted or not: hides `notes` without inclusion
                picked = rnd.sample([o.id for o in challenges.options], rnd.randint(1, 3))
                await service.save(m, challenges, picked, None, now)
            elif action == 1:  # a free text written, emptied, written again
                await service.save(m, notes, [], rnd.choice(["", "Des parcs", "Bancs"]), now)
            elif action == 2:
                await CommuneRepository(session).save(m, rnd.choice(COMMUNES), now)
            elif action == 3:  # a whole walk, submitted (again)
                await answer_survey(session, consultation, m, plan(rnd, True), now)
            elif action == 4:  # a response erased on its own, outside the bot
                await session.execute(delete(Response).where(Response.member_id == m))
                await session.commit()
            elif await session.get(Member, m) is not None:  # /forget
                await erase(session, m, f":{m}:{m}:", now)
                await session.commit()
                members.remove(m)
                members.append(max(members) + 1)
                await MemberRepository(session).get_or_create(members[-1], "new")
                await session.commit()
            session.expunge_all()
            assert await kept(session, cid) == await recounted(session, cid), step
        # An import: responses written submitted, their answers after them.
        session.add_all([Member(id=900, first_name="imported", commune="namur")])
        await session.flush()
        imported = Response(consultation_id=cid, member_id=900, status="submitted")
        session.add(imported)
        await session.flush()
        session.add_all(
            [
                QuestionAnswer(response_id=imported.id, question_id="challenges"),
                AnswerChoice(response_id=imported.id, question_id="challenges", option_id="x"),
            ]
        )
        await session.commit()
        assert await kept(session, cid) == await recounted(session, cid)
        assert (await kept(session, cid))[("namur", "challenges", "x")] == 1
        # What the results read is those counts, per commune and summed.
        counted = await recounted(session, cid)
        by_commune = await tally_by_commune(session, cid)
        for (commune, q, o), n in counted.items():
            part = by_commune[commune or None]
            assert (
                part.respondents
                if not q
                else part.seen[q]
                if not o
                else n
                if o == "*"
                else part.chosen[(q, o)]
            ) == n


@pytest.mark.parametrize("database_url", ["postgresql"], indirect=True)
async def test_a_crowd_submitting_editing_and_moving_at_once_counts_right(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation
) -> None:
    """PostgreSQL: 60 members submit, edit their submitted answers and change commune all at
    once, each on connections of their own: no deadlock, no error, counts exact."""
    rnd = random.Random(20)
    times = survey_times(consultation)
    members = list(range(100, 160))
    async with sessionmaker() as session:
        for m in members:
            await MemberRepository(session).get_or_create(m, f"m{m}")
        await session.commit()

    async def walk(m: int) -> None:
        mine = random.Random(m)
        async with sessionmaker() as session:
            await CommuneRepository(session).save(m, mine.choice(COMMUNES), times[m])
            await answer_survey(session, consultation, m, plan(mine, True), times[m + 100])
            challenges = consultation.question("challenges")
            assert challenges is not None
            options = [o.id for o in challenges.options]
            for k in range(3):
                picked = mine.sample(options, mine.randint(1, 3))
                await SurveyService(session, consultation).save(
                    m, challenges, picked, None, times[m + 200 + k]
                )
                await CommuneRepository(session).save(m, mine.choice(COMMUNES), times[m + 300])

    rnd.shuffle(members)
    await asyncio.gather(*(walk(m) for m in members))
    async with sessionmaker() as session:
        counted = await recounted(session, consultation.id)
        assert await kept(session, consultation.id) == counted
        assert sum(n for (_c, q, _o), n in counted.items() if not q) == 60


@pytest.mark.parametrize("storage", ["sqlite", "postgresql"])
async def test_upgrading_counts_the_responses_already_there(
    storage: str, tmp_path: Path, consultation: Consultation
) -> None:
    """A deployment upgraded to 0015 with answers stored: the counts start from them."""
    name = unique_name("cbt")
    if storage == "sqlite":
        url = f"sqlite+aiosqlite:///{tmp_path / 'before.db'}"
    else:
        url = await postgres_database(name, create=True)
    try:
        await upgrade_async(url, "0014")
        engine = make_engine(url)
        try:
            async with engine.begin() as conn:
                rows = [
                    "INSERT INTO members (id, first_name, blocked, created_at, commune) VALUES"
                    " (1, 'a', false, '2026-01-01', 'namur'), (2, 'b', false, '2026-01-01', NULL),"
                    " (3, 'c', false, '2026-01-01', 'namur')",
                    "INSERT INTO responses (id, consultation_id, member_id, status, updated_at)"
                    f" VALUES (1, '{consultation.id}', 1, 'submitted', '2026-01-01'),"
                    f" (2, '{consultation.id}', 2, 'submitted', '2026-01-01'),"
                    f" (3, '{consultation.id}', 3, 'draft', '2026-01-01')",
                    "INSERT INTO question_answers (response_id, question_id, text) VALUES"
                    " (1, 'challenges', NULL), (1, 'notes', 'Des bancs'), (2, 'challenges', NULL),"
                    " (3, 'challenges', NULL)",
                    "INSERT INTO answer_choices (response_id, question_id, option_id) VALUES"
                    " (1, 'challenges', 'inclusion'), (2, 'challenges', 'inclusion'),"
                    " (2, 'challenges', 'strategy'), (3, 'challenges', 'strategy')",
                ]
                for sql in rows:
                    await conn.execute(text(sql))
            await upgrade_async(url)
            async with make_sessionmaker(engine)() as session:
                counted = await recounted(session, consultation.id)
                assert await kept(session, consultation.id) == counted
                assert counted[("namur", "challenges", "inclusion")] == 1
                assert counted[("", "challenges", "strategy")] == 1
                assert counted[("namur", "notes", "*")] == 1
                assert ("namur", "challenges", "strategy") not in counted  # a draft
        finally:
            await engine.dispose()
    finally:
        if storage == "postgresql":
            await postgres_database(name, create=False)
