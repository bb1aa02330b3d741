"""The two store paths of a survey answer leave the same rows.

SQLite runs `SurveyRepository.store`'s statements; PostgreSQL calls `consultbot_store_answer`,
the function of migration 0007 that runs them in one round trip. The same answers, changes,
clears and submissions go through SurveyService on both databases (PostgreSQL is required:
its fixture fails when the server is unreachable) and the stored rows are compared.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select

from bot.consultation import Consultation, PhaseKind
from bot.survey.service import SurveyService
from storage.db import make_engine, make_sessionmaker
from storage.models import AnswerChoice, QuestionAnswer, Response
from storage.repositories.members import MemberRepository
from storage.repositories.survey import SurveyRepository
from tests.support import consultation_with_notes

C = consultation_with_notes()
MEMBERS = (1, 2, 3, 4, 5)

# (member, question, choices or a text; None clears the answer). Times step a minute each.
STEPS: list[tuple[int, str, list[str] | str | None]] = [
    (1, "challenges", ["inclusion", "strategy"]),
    (1, "notes", "Plus de bancs"),
    (1, "notes", "Plus de bancs, et d’ombre"),  # a text changed
    (1, "strategy_axes", ["local_approach", "communication"]),
    (1, "strategy_axes", ["communication", "professionals"]),  # one kept, one swapped
    (1, "inclusion", ["youth"]),
    (1, "living_together", ["public_space"]),
    (1, "nuisances", ["drugs", "drugs"]),  # twice in the tap, once in the answer
    (1, "rehab_priority", ["yes"]),
    (1, "rehab_focus", ["victims"]),
    (1, "rehab_priority", ["no"]),  # hides (drops) rehab_focus
    (1, "challenges", ["nuisances", "strategy"]),  # hides (drops) the notes, keeps the axes
    (2, "challenges", ["inclusion", "strategy"]),
    (2, "notes", ""),  # an empty text: min 0
    (2, "strategy_axes", ["local_economy"]),
    (2, "strategy_axes", None),  # taken back below the minimum
    (2, "challenges", None),  # cleared, with the notes that depended on it
    (2, "challenges", ["living_together", "rehabilitation"]),
    (3, "challenges", ["inclusion", "strategy"]),
    (3, "notes", "Des arbres"),
    (3, "challenges", ["inclusion"]),  # the notes still asked: kept
    (4, "challenges", ["strategy"]),
    (4, "challenges", []),  # a choice answer without choices
]
SUBMITS = (1, 2, 5)  # 1 complete; 2 not (refused); 5 without any answer (refused)


@dataclass(frozen=True)
class Stored:
    """What a database holds after the sequence, by member rather than by row id."""

    responses: list[tuple[Any, ...]]  # member, consultation, status, submitted_at, updated_at
    answers: list[tuple[Any, ...]]  # member, question, text
    choices: list[tuple[Any, ...]]  # member, question, option
    submitted: list[bool]  # what SurveyService.submit said, for each of SUBMITS
    through_function: bool  # stored by PostgreSQL's function (else by the statements)


async def stored_rows(database_url: str) -> Stored:
    """Run STEPS and SUBMITS through SurveyService on a migrated database; what it holds."""
    engine = make_engine(database_url)
    try:
        sessionmaker = make_sessionmaker(engine)
        async with sessionmaker() as session:
            for member_id in MEMBERS:
                await MemberRepository(session).get_or_create(member_id, f"m{member_id}")
            await session.commit()
            service = SurveyService(session, C)
            submitted = await _run(service, _survey_start(C))
        async with sessionmaker() as session:
            responses = list(await session.scalars(select(Response)))
            member_of = {r.id: r.member_id for r in responses}
            return Stored(
                responses=sorted(
                    (r.member_id, r.consultation_id, r.status, r.submitted_at, r.updated_at)
                    for r in responses
                ),
                answers=sorted(
                    (member_of[a.response_id], a.question_id, a.text)
                    for a in await session.scalars(select(QuestionAnswer))
                ),
                choices=sorted(
                    (member_of[c.response_id], c.question_id, c.option_id)
                    for c in await session.scalars(select(AnswerChoice))
                ),
                submitted=submitted,
                through_function=SurveyRepository(session).stores_at_once,
            )
    finally:
        await engine.dispose()


def _survey_start(consultation: Consultation) -> datetime:
    survey = consultation.phase(PhaseKind.SURVEY)
    assert survey is not None
    return survey.starts + timedelta(hours=1)


async def _run(service: SurveyService, now: datetime) -> list[bool]:
    for member_id, question_id, answer in STEPS:
        now += timedelta(minutes=1)
        question = C.question(question_id)
        assert question is not None
        if answer is None:
            await service.clear(member_id, question, now)
        elif isinstance(answer, str):
            await service.save(member_id, question, [], answer, now)
        else:
            await service.save(member_id, question, answer, None, now)
    outcomes = []
    for member_id in SUBMITS:
        now += timedelta(minutes=1)
        outcomes.append(await service.submit(member_id, now))
    return outcomes


async def test_sqlite_statements_and_postgresql_function_store_the_same_rows(
    sqlite_url: str, postgres_url: str
) -> None:
    sqlite = await stored_rows(sqlite_url)
    postgresql = await stored_rows(postgres_url)
    # Each database took its own path: the comparison is between the two.
    assert not sqlite.through_function and postgresql.through_function
    assert postgresql.responses == sqlite.responses
    assert postgresql.answers == sqlite.answers
    assert postgresql.choices == sqlite.choices
    assert postgresql.submitted == sqlite.submitted == [True, False, False]
    # The sequence did what it says, so that the rows are not equal by being empty.
    assert [(r[0], r[2]) for r in sqlite.responses] == [
        (1, "submitted"),
        (2, "draft"),
        (3, "draft"),
        (4, "draft"),
        (5, "draft"),
    ]
    answered = {(m, q) for m, q, _text in sqlite.answers}
    assert {(1, "rehab_focus"), (1, "notes"), (2, "notes"), (2, "strategy_axes")}.isdisjoint(
        answered
    )
    assert (1, "rehab_priority") in answered and (4, "challenges") in answered
    assert (3, "notes", "Des arbres") in sqlite.answers
    assert [c for c in sqlite.choices if c[:2] == (1, "nuisances")] == [(1, "nuisances", "drugs")]
    assert [c[2] for c in sqlite.choices if c[:2] == (1, "strategy_axes")] == [
        "communication",
        "professionals",
    ]
    assert not [c for c in sqlite.choices if c[0] == 4]
