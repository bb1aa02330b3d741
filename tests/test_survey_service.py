"""The survey service on real databases: the phase checked at commit time, and two devices of
one member answering at once (PostgreSQL: row locks, not luck)."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime, timedelta

import pytest
from sqlalchemy import func, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.consultation import Consultation, load_consultation
from bot.survey.service import SurveyClosed, SurveyService, first_unanswered, visible_questions
from storage.db import make_engine, make_sessionmaker
from storage.models import AnswerChoice, Response
from storage.repositories.members import MemberRepository
from storage.repositories.survey import AnswerWrite, StoredAnswer, SurveyRepository
from tests.support import DEFAULT_CONSULTATION


@pytest.fixture
def consultation() -> Consultation:
    return load_consultation(DEFAULT_CONSULTATION)


async def add_member(sessionmaker: async_sessionmaker[AsyncSession], member_id: int) -> None:
    async with sessionmaker() as session:
        await MemberRepository(session).get_or_create(member_id, f"M{member_id}")
        await session.commit()


async def stored(
    sessionmaker: async_sessionmaker[AsyncSession], member_id: int, question: str
) -> list[str]:
    async with sessionmaker() as session:
        response = await SurveyRepository(session).response("deconfinement-2020", member_id)
        if response is None:
            return []
        rows = await session.scalars(
            select(AnswerChoice.option_id).where(
                AnswerChoice.response_id == response.id, AnswerChoice.question_id == question
            )
        )
        return sorted(rows.all())


async def response_id(session: AsyncSession, member_id: int) -> int:
    response = await SurveyRepository(session).response("c", member_id)
    assert response is not None
    return response.id


async def test_answer_refused_when_the_survey_closed_before_the_commit(
    sessionmaker: async_sessionmaker[AsyncSession], consultation: Consultation
) -> None:
    survey = consultation.phases[0]
    inside, after = survey.ends - timedelta(seconds=1), survey.ends + timedelta(seconds=1)
    question = consultation.questions[0]
    await add_member(sessionmaker, 5)
    async with sessionmaker() as session:
        late = SurveyService(session, consultation, clock=lambda: after)
        with pytest.raises(SurveyClosed):
            await late.save(5, question, [question.options[0].id], None, inside)
        with pytest.raises(SurveyClosed):
            await SurveyService(session, consultation).save(
                5, question, [question.options[0].id], None, after
            )
    assert await stored(sessionmaker, 5, question.id) == []
    async with sessionmaker() as session:
        service = SurveyService(session, consultation, clock=lambda: inside)
        answers = await service.save(5, question, [question.options[0].id], None, inside)
        while (pending := first_unanswered(consultation, answers)) is not None:
            q = visible_questions(consultation, answers)[pending]
            answers = await service.save(5, q, [q.options[-1].id], None, inside)
        with pytest.raises(SurveyClosed):
            await SurveyService(session, consultation, clock=lambda: after).submit(5, inside)
        response = await SurveyRepository(session).response(consultation.id, 5)
        assert response is not None and response.status == "draft"
    assert await stored(sessionmaker, 5, question.id) == [question.options[0].id]


async def test_two_devices_answer_a_single_choice_question_at_once(
    postgres_url: str, consultation: Consultation
) -> None:
    """Two sessions of one member race on the same single-choice question, many rounds:
    exactly one option is stored each time, and neither device gets an error."""
    question = next(q for q in consultation.questions if q.kind == "single")
    first, second = question.options[0].id, question.options[1].id
    now = consultation.phases[0].starts + timedelta(days=1)
    engine = make_engine(postgres_url)
    sessionmaker = make_sessionmaker(engine)
    try:
        for member_id in range(1, 13):
            await add_member(sessionmaker, member_id)

        async def answer(member_id: int, option: str) -> None:
            async with sessionmaker() as session:
                service = SurveyService(session, consultation, clock=lambda: now)
                await service.save(member_id, question, [option], None, now)

        for member_id in range(1, 13):
            # Half the members answered before (delete-then-insert), half answer first here
            # (two first answers create one response).
            if member_id % 2:
                await answer(member_id, first)
            await asyncio.gather(answer(member_id, first), answer(member_id, second))
            assert len(await stored(sessionmaker, member_id, question.id)) == 1, member_id
        async with sessionmaker() as session:
            assert await session.scalar(select(func.count()).select_from(Response)) == 12
    finally:
        await engine.dispose()


async def test_an_answer_stored_in_one_statement_leaves_the_rows_of_the_transaction(
    postgres_url: str,
) -> None:
    """PostgreSQL stores an answer through a function (one round trip); the transaction of
    plain statements, which SQLite runs, must leave exactly the same rows, step by step:
    choices kept, added and taken back, a text answer replaced, answers dropped."""
    engine = make_engine(postgres_url)
    sessionmaker = make_sessionmaker(engine)
    steps: list[tuple[str, list[str], str | None, list[str]]] = [
        ("challenges", ["inclusion", "strategy"], None, []),
        ("challenges", ["strategy", "nuisances", "strategy"], None, []),
        ("note", [], "premier jet", []),
        ("note", [], "version finale", ["challenges"]),
        ("rehab_priority", ["yes"], None, []),
        ("rehab_focus", ["victims"], None, []),
        ("rehab_priority", ["no"], None, ["rehab_focus", "rehab_priority"]),
        ("challenges", [], "", []),
    ]
    now = datetime(2020, 5, 10, 12, 0, tzinfo=UTC)
    try:
        await add_member(sessionmaker, 1)
        await add_member(sessionmaker, 2)
        async with sessionmaker() as session:
            repo = SurveyRepository(session)
            assert repo.stores_at_once
            for question, choices, text, drop in steps:
                await repo.store_at_once(AnswerWrite("c", 1, question, choices, text, now, drop))
                async with repo.direct.writing() as db:
                    await repo.store(db, AnswerWrite("c", 2, question, choices, text, now, drop))
                by_function, by_statements = [
                    await repo.answers(await response_id(session, m)) for m in (1, 2)
                ]
                assert {q: (set(a.choices), a.text) for q, a in by_function.items()} == {
                    q: (set(a.choices), a.text) for q, a in by_statements.items()
                }, question
            assert set(by_function) == {"note", "challenges", "rehab_priority"}
            assert by_function["rehab_priority"] == StoredAnswer(("no",), None)
            assert by_function["note"].text == "version finale"
            assert by_function["challenges"] == StoredAnswer((), "")
            statuses = await session.scalars(select(Response.status))
            assert set(statuses) == {"draft"}
    finally:
        await engine.dispose()
