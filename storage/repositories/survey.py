"""Survey responses: drafts saved question by question, submission, erasure."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime

from sqlalchemy import delete, func, select
from sqlalchemy.dialects.postgresql import insert as pg_insert
from sqlalchemy.dialects.sqlite import insert as sqlite_insert
from sqlalchemy.ext.asyncio import AsyncSession

from storage.models import AnswerChoice, QuestionAnswer, Response


@dataclass(frozen=True)
class StoredAnswer:
    choices: tuple[str, ...] = field(default_factory=tuple)
    text: str | None = None


class SurveyRepository:
    def __init__(self, session: AsyncSession) -> None:
        self.session = session

    async def response(self, consultation_id: str, member_id: int) -> Response | None:
        return await self.session.scalar(
            select(Response).where(
                Response.consultation_id == consultation_id, Response.member_id == member_id
            )
        )

    async def get_or_create(self, consultation_id: str, member_id: int) -> Response:
        """The member's response, created if needed and locked until the transaction ends.

        Every write to a response's answers starts here: the row lock (FOR UPDATE on
        PostgreSQL; SQLite has one writer anyway) makes two devices of one member take turns,
        so a delete-then-insert never interleaves with another one (two options stored on a
        single-choice question). ON CONFLICT: two first answers at once create one response."""
        dialect = self.session.bind.dialect.name if self.session.bind else "sqlite"
        insert = pg_insert if dialect == "postgresql" else sqlite_insert
        await self.session.execute(
            insert(Response)
            .values(consultation_id=consultation_id, member_id=member_id, status="draft")
            .on_conflict_do_nothing(index_elements=["consultation_id", "member_id"])
        )
        response = await self.session.scalar(
            select(Response)
            .where(Response.consultation_id == consultation_id, Response.member_id == member_id)
            .with_for_update()
            .execution_options(populate_existing=True)
        )
        assert response is not None
        return response

    async def answers(self, response_id: int) -> dict[str, StoredAnswer]:
        rows = await self.session.execute(
            select(QuestionAnswer.question_id, QuestionAnswer.text).where(
                QuestionAnswer.response_id == response_id
            )
        )
        texts = {qid: text for qid, text in rows}
        chosen: dict[str, list[str]] = {qid: [] for qid in texts}
        choice_rows = await self.session.execute(
            select(AnswerChoice.question_id, AnswerChoice.option_id).where(
                AnswerChoice.response_id == response_id
            )
        )
        for qid, oid in choice_rows:
            chosen.setdefault(qid, []).append(oid)
        return {qid: StoredAnswer(tuple(chosen.get(qid, ())), texts.get(qid)) for qid in texts}

    async def save_answer(
        self, response: Response, question_id: str, choices: Iterable[str], text: str | None
    ) -> None:
        await self.drop_answers(response, [question_id])
        self.session.add(
            QuestionAnswer(response_id=response.id, question_id=question_id, text=text)
        )
        for option_id in dict.fromkeys(choices):
            self.session.add(
                AnswerChoice(response_id=response.id, question_id=question_id, option_id=option_id)
            )
        await self.session.flush()

    async def drop_answers(self, response: Response, question_ids: Iterable[str]) -> None:
        ids = list(question_ids)
        if not ids:
            return
        await self.session.execute(
            delete(AnswerChoice).where(
                AnswerChoice.response_id == response.id, AnswerChoice.question_id.in_(ids)
            )
        )
        await self.session.execute(
            delete(QuestionAnswer).where(
                QuestionAnswer.response_id == response.id, QuestionAnswer.question_id.in_(ids)
            )
        )

    async def submit(self, response: Response, now: datetime) -> None:
        response.status = "submitted"
        response.submitted_at = now
        response.updated_at = now
        await self.session.flush()

    async def touch(self, response: Response, now: datetime) -> None:
        response.updated_at = now


@dataclass(frozen=True)
class Tally:
    """Submitted responses counted in SQL: respondents, per question and per option."""

    respondents: int
    seen: dict[str, int]
    chosen: dict[tuple[str, str], int]


async def tally(session: AsyncSession, consultation_id: str) -> Tally:
    submitted = (Response.consultation_id == consultation_id) & (Response.status == "submitted")
    respondents = await session.scalar(select(func.count()).select_from(Response).where(submitted))
    seen_rows = await session.execute(
        select(QuestionAnswer.question_id, func.count())
        .join(Response, Response.id == QuestionAnswer.response_id)
        .where(submitted)
        .group_by(QuestionAnswer.question_id)
    )
    chosen_rows = await session.execute(
        select(AnswerChoice.question_id, AnswerChoice.option_id, func.count())
        .join(Response, Response.id == AnswerChoice.response_id)
        .where(submitted)
        .group_by(AnswerChoice.question_id, AnswerChoice.option_id)
    )
    return Tally(
        respondents=respondents or 0,
        seen={qid: n for qid, n in seen_rows},
        chosen={(qid, oid): n for qid, oid, n in chosen_rows},
    )


async def members_without_submission(
    session: AsyncSession, consultation_id: str, member_ids: list[int]
) -> list[int]:
    done = set(
        (
            await session.scalars(
                select(Response.member_id).where(
                    Response.consultation_id == consultation_id, Response.status == "submitted"
                )
            )
        ).all()
    )
    return [m for m in member_ids if m not in done]
