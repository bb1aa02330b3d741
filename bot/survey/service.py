"""Survey rules: which questions a member sees, what a valid answer is, and the use cases."""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass
from datetime import datetime

from sqlalchemy.ext.asyncio import AsyncSession

from bot.consultation import Consultation, PhaseKind, Question
from bot.phases.timeline import Timeline
from bot.survey.kinds import AnswerProblem, kind_of
from storage.repositories.survey import AnswerWrite, StoredAnswer, SurveyRepository

Answers = Mapping[str, StoredAnswer]


def is_visible(question: Question, answers: Answers) -> bool:
    """A conditional question is shown only when its condition's answer was given."""
    if question.when is None:
        return True
    given = answers.get(question.when.question)
    return given is not None and any(o in given.choices for o in question.when.any)


def visible_questions(consultation: Consultation, answers: Answers) -> list[Question]:
    # Conditions only point at earlier questions (checked on load), so one pass suffices
    # if hidden questions' answers are ignored as we go.
    seen: dict[str, StoredAnswer] = {}
    out = []
    for q in consultation.questions:
        if is_visible(q, seen):
            out.append(q)
            if q.id in answers:
                seen[q.id] = answers[q.id]
    return out


def hidden_answered(consultation: Consultation, answers: Answers) -> list[str]:
    """Answers that no longer count because their condition stopped holding."""
    visible = {q.id for q in visible_questions(consultation, answers)}
    return [qid for qid in answers if qid not in visible]


def hidden_by(consultation: Consultation, question: Question, choices: list[str]) -> list[str]:
    """Questions this answer hides: those whose condition is on it and no longer holds (and,
    in turn, the ones that depend on those). Known from the file alone, without a read."""
    hidden: list[str] = []
    gone = {question.id: set(choices)}
    for q in consultation.questions:
        if q.when is None or q.when.question not in gone:
            continue
        chosen = gone[q.when.question]
        if q.when.question in hidden or not any(o in chosen for o in q.when.any):
            hidden.append(q.id)
            gone[q.id] = set()
    return hidden


def check_answer(question: Question, choices: list[str], text: str | None) -> AnswerProblem | None:
    """Why this answer cannot be stored (its kind decides), or None when it can."""
    return kind_of(question).check(question, choices, text)


def stored_answer(question: Question, choices: list[str], text: str | None) -> StoredAnswer:
    """What storing this (valid) answer keeps: choices or text, as the question's kind takes."""
    return StoredAnswer(*kind_of(question).stored(choices, text))


def first_unanswered(consultation: Consultation, answers: Answers) -> int | None:
    """Index, among visible questions, of the first one not yet answered."""
    for i, q in enumerate(visible_questions(consultation, answers)):
        if q.id not in answers:
            return i
    return None


@dataclass(frozen=True)
class SurveyState:
    status: str  # none | draft | submitted
    answers: dict[str, StoredAnswer]


class SurveyClosed(Exception):
    """The survey was not open when the answer was to be stored: nothing was stored."""


class SurveyService:
    """Use cases of the survey dialog; every method commits its own change."""

    def __init__(
        self,
        session: AsyncSession,
        consultation: Consultation,
        clock: Callable[[], datetime] | None = None,
    ) -> None:
        self.session = session
        self.consultation = consultation
        self.repo = SurveyRepository(session)
        # Read again just before each commit: a screen shown at 23:59 may be confirmed later.
        self.clock = clock

    def is_open(self, now: datetime) -> bool:
        return Timeline(self.consultation).is_open(PhaseKind.SURVEY, now)

    def _check_open(self, now: datetime) -> None:
        """Raise SurveyClosed unless the survey is open at `now` and again by the clock now:
        called inside the storing transaction, once the writes are done (and the response row
        locked), so that a screen shown at 23:59 and confirmed later stores nothing."""
        if not self.is_open(now) or not self.is_open(self.clock() if self.clock else now):
            raise SurveyClosed

    async def state(self, member_id: int) -> SurveyState:
        async with self.repo.direct.reading() as db:
            found = await self.repo.draft(db, self.consultation.id, member_id)
            if found is None:
                return SurveyState("none", {})
            response_id, status = found
            return SurveyState(status, await self.repo.answers(response_id, db))

    async def save(
        self,
        member_id: int,
        question: Question,
        choices: list[str],
        text: str | None,
        now: datetime,
        known: Answers | None = None,
    ) -> dict[str, StoredAnswer]:
        """Store one confirmed answer, drop answers whose condition no longer holds.

        With `known` (the answers as the caller last saw them) the result is worked out
        without reading them back. Raises SurveyClosed (nothing stored) when the survey is not
        open at commit time (on PostgreSQL, when the one statement that stores it is sent).
        A transaction of its own, outside the update's session, without the ORM."""
        drop = hidden_by(self.consultation, question, choices)
        stored = stored_answer(question, choices, text)
        write = AnswerWrite(
            self.consultation.id, member_id, question.id, stored.choices, stored.text, now, drop
        )
        if self.repo.stores_at_once:
            # One statement, committed at once: the check goes first, a statement's length
            # before the commit instead of just before it.
            self._check_open(now)
            await self.repo.store_at_once(write)
        else:
            async with self.repo.direct.writing() as db:
                await self.repo.store(db, write)
                self._check_open(now)
        if known is None:
            return (await self.state(member_id)).answers
        answers = {qid: a for qid, a in known.items() if qid not in drop}
        answers[question.id] = stored
        return answers

    async def clear(
        self, member_id: int, question: Question, now: datetime, known: Answers | None = None
    ) -> dict[str, StoredAnswer]:
        """Forget one answer (the member took picks back below the minimum) and those that
        depended on it."""
        drop = [question.id, *hidden_by(self.consultation, question, [])]
        async with self.repo.direct.writing() as db:
            await self.repo.unstore(db, self.consultation.id, member_id, drop, now)
            self._check_open(now)
        if known is None:
            return (await self.state(member_id)).answers
        return {qid: a for qid, a in known.items() if qid not in drop}

    async def status(self, member_id: int) -> str:
        """none | draft | submitted"""
        async with self.repo.direct.reading() as db:
            found = await self.repo.draft(db, self.consultation.id, member_id)
        return found[1] if found else "none"

    async def submit(self, member_id: int, now: datetime) -> bool:
        """Submit when every visible question is answered; False if something is missing.

        Raises SurveyClosed (nothing stored) when the survey is not open at commit time."""
        async with self.repo.direct.writing() as db:
            response_id = await self.repo.lock_response(db, self.consultation.id, member_id, now)
            answers = await self.repo.answers(response_id, db)
            if first_unanswered(self.consultation, answers) is not None:
                return False
            await self.repo.mark_submitted(db, response_id, now)
            self._check_open(now)
        return True
