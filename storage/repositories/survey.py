"""Survey responses: drafts saved question by question, submission (the counts of the
submitted ones: storage/repositories/tallies.py).

Answers are written one way, by bot/survey/service.py's SurveyService through the statements
below; the session only reads. Two store paths stay in step (tests/test_store_parity.py):
`SurveyRepository.store` (SQLite, any database but PostgreSQL) and, on PostgreSQL, the function
`consultbot_store_answer` of migration 0007 (`store_at_once`).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from datetime import datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, delete, select, update
from sqlalchemy.ext.asyncio import AsyncSession

from storage.hot_path.statements import Direct, Runner
from storage.models import AnswerChoice, QuestionAnswer, Response, UtcDateTime
from storage.upsert import insert_for


@dataclass(frozen=True)
class TapStatements:
    """The statements of a survey tap, built once per dialect: building and caching a
    statement costs more CPU than SQLite takes to run it. No expanding IN lists, so that
    storage/hot_path/statements.py can compile them once for SQLite."""

    response: Any
    lock: Any
    submitted: Any
    touch: Any
    drop_choices: Any
    drop_answer: Any
    answer: Any
    choices: Any
    draft: Any
    answers: Any


@cache
def _tap_statements(dialect: str) -> TapStatements:
    insert = insert_for(dialect)
    responses, answers, choices = (t.__table__ for t in (Response, QuestionAnswer, AnswerChoice))
    response = insert(responses).values(
        consultation_id=bindparam("c"),
        member_id=bindparam("m"),
        status="draft",
        updated_at=bindparam("now"),
    )
    answer = insert(answers).values(
        response_id=bindparam("r"), question_id=bindparam("q"), text=bindparam("t")
    )
    mine = (responses.c.consultation_id == bindparam("c")) & (
        responses.c.member_id == bindparam("m")
    )
    return TapStatements(
        response=response.on_conflict_do_update(
            index_elements=[responses.c.consultation_id, responses.c.member_id],
            set_={"updated_at": response.excluded.updated_at},
        ).returning(responses.c.id),
        # The response, created if needed, its row locked until commit (PostgreSQL): two
        # devices of one member submitting or answering take turns. Nothing is changed.
        lock=response.on_conflict_do_update(
            index_elements=[responses.c.consultation_id, responses.c.member_id],
            set_={"updated_at": responses.c.updated_at},
        ).returning(responses.c.id),
        submitted=update(responses)
        .where(responses.c.id == bindparam("r"))
        .values(status="submitted", submitted_at=bindparam("now"), updated_at=bindparam("now")),
        touch=update(responses)
        .where(mine)
        .values(updated_at=bindparam("now"))
        .returning(responses.c.id),
        drop_choices=delete(choices).where(
            choices.c.response_id == bindparam("r"), choices.c.question_id == bindparam("q")
        ),
        drop_answer=delete(answers).where(
            answers.c.response_id == bindparam("r"), answers.c.question_id == bindparam("q")
        ),
        answer=answer.on_conflict_do_update(
            index_elements=[answers.c.response_id, answers.c.question_id],
            set_={"text": answer.excluded.text},
        ),
        choices=insert(choices),
        draft=select(responses.c.id, responses.c.status).where(mine),
        # One round trip: each answer with its choices (none for a text answer).
        answers=select(answers.c.question_id, answers.c.text, choices.c.option_id)
        .outerjoin(
            choices,
            (choices.c.response_id == answers.c.response_id)
            & (choices.c.question_id == answers.c.question_id),
        )
        .where(answers.c.response_id == bindparam("r")),
    )


# PostgreSQL: `SurveyRepository.store`'s statements (TapStatements.response, drop_choices,
# drop_answer, answer, choices) in one round trip: the function consultbot_store_answer of
# storage/migrations/versions/0007_store_answer_function.py. A change to one is made to both.
_STORE_AT_ONCE = sa.text(
    "SELECT consultbot_store_answer(:c, :m, :now, :q, :t, :chosen, :dropped)"
).bindparams(
    bindparam("m", type_=sa.BigInteger()),
    bindparam("now", type_=UtcDateTime()),
    bindparam("chosen", type_=sa.ARRAY(sa.Text())),
    bindparam("dropped", type_=sa.ARRAY(sa.Text())),
)


@dataclass(frozen=True)
class AnswerWrite:
    """One confirmed answer to store, and the answers it hides (`drop`)."""

    consultation_id: str
    member_id: int
    question_id: str
    choices: Iterable[str]
    text: str | None
    now: datetime
    drop: Iterable[str] = ()

    @property
    def chosen(self) -> list[str]:
        return list(dict.fromkeys(self.choices))

    @property
    def dropped(self) -> list[str]:
        return [q for q in self.drop if q != self.question_id]


@dataclass(frozen=True)
class StoredAnswer:
    choices: tuple[str, ...] = field(default_factory=tuple)
    text: str | None = None


Answers = dict[str, "StoredAnswer"]


class SurveyRepository:
    """Responses read through the session, and a survey tap's statements through `direct`
    (storage/hot_path/statements.py): a runner from `direct.reading()` or `direct.writing()`.
    Every write goes through the statements (SurveyService), none through the ORM."""

    def __init__(self, session: AsyncSession) -> None:
        self.session = session
        self.direct = Direct.of_session(session)
        self.sql = _tap_statements(self.direct.engine.dialect.name)
        # One autocommitted statement stores an answer (store_at_once), no transaction around.
        self.stores_at_once = self.direct.asyncpg

    async def response(self, consultation_id: str, member_id: int) -> Response | None:
        return await self.session.scalar(
            select(Response).where(
                Response.consultation_id == consultation_id, Response.member_id == member_id
            )
        )

    async def answers(self, response_id: int, db: Runner | None = None) -> Answers:
        """A response's answers, read through the session or, with `db`, a direct runner."""
        sql = self.sql
        if db is None:
            rows = list(await self.session.execute(sql.answers, {"r": response_id}))
        else:
            rows = await db.rows(sql.answers, {"r": response_id})
        texts: dict[str, str | None] = {}
        chosen: dict[str, list[str]] = {}
        for qid, text, oid in rows:
            texts[qid] = text
            options = chosen.setdefault(qid, [])
            if oid is not None:
                options.append(oid)
        return {qid: StoredAnswer(tuple(chosen[qid]), texts[qid]) for qid in texts}

    async def draft(
        self, db: Runner, consultation_id: str, member_id: int
    ) -> tuple[int, str] | None:
        """(response id, status) of the member's response, if any."""
        rows = await db.rows(self.sql.draft, {"c": consultation_id, "m": member_id})
        return (rows[0][0], rows[0][1]) if rows else None

    async def store(self, db: Runner, write: AnswerWrite) -> None:
        """Replace one answer (and drop others) in a few plain statements, in `db`'s
        transaction: the store path of SQLite (run by storage/hot_path/statements.py).

        PostgreSQL stores the same rows with one call of `consultbot_store_answer`, the
        function of migration 0007 (`store_at_once`): a change here is made there too, in a
        new migration; tests/test_store_parity.py compares the two.

        The upsert of the response row comes first: on PostgreSQL it locks that row until
        commit, so two devices of one member store their answers one after the other.
        """
        sql, w = self.sql, write
        response_id: int = (
            await db.rows(sql.response, {"c": w.consultation_id, "m": w.member_id, "now": w.now})
        )[0][0]
        await db.run(
            sql.drop_choices,
            [{"r": response_id, "q": q} for q in [w.question_id, *w.dropped]],
        )
        await db.run(sql.drop_answer, [{"r": response_id, "q": q} for q in w.dropped])
        await db.run(sql.answer, {"r": response_id, "q": w.question_id, "t": w.text})
        await db.run(
            sql.choices,
            [
                {"response_id": response_id, "question_id": w.question_id, "option_id": option}
                for option in w.chosen
            ],
        )

    async def store_at_once(self, write: AnswerWrite) -> None:
        """`store` in one round trip, committed (PostgreSQL, `stores_at_once`): the function
        locks the response row first and reads fresh data after it, as `store`'s transaction.

        It runs the statements `store` runs on SQLite (`_tap_statements`, compiled by
        storage/hot_path/statements.py), written in PL/pgSQL by migration 0007."""
        w = write
        params = {
            "c": w.consultation_id,
            "m": w.member_id,
            "now": w.now,
            "q": w.question_id,
            "t": w.text,
            "chosen": w.chosen,
            "dropped": w.dropped,
        }
        async with self.direct.autocommit() as db:
            await db.rows(_STORE_AT_ONCE, params)

    async def lock_response(
        self, db: Runner, consultation_id: str, member_id: int, now: datetime
    ) -> int:
        """The member's response id, the response created (as a draft, dated `now`) if needed;
        an existing one is left as it is."""
        rows = await db.rows(self.sql.lock, {"c": consultation_id, "m": member_id, "now": now})
        return int(rows[0][0])

    async def mark_submitted(self, db: Runner, response_id: int, now: datetime) -> None:
        await db.run(self.sql.submitted, {"r": response_id, "now": now})

    async def unstore(
        self,
        db: Runner,
        consultation_id: str,
        member_id: int,
        question_ids: Iterable[str],
        now: datetime,
    ) -> None:
        """Drop answers (the member took a choice back below the minimum)."""
        sql = self.sql
        found = await db.rows(sql.touch, {"c": consultation_id, "m": member_id, "now": now})
        if not found:
            return
        drops = [{"r": found[0][0], "q": q} for q in question_ids]
        await db.run(sql.drop_choices, drops)
        await db.run(sql.drop_answer, drops)


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
