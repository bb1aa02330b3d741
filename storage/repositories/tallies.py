"""The submitted responses counted for the results: tallies (in the network and per commune),
the data version they are computed from, free-text answers. Every long read runs off the
event loop (storage/hot_path/statements.py, `reading_aside`)."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache
from typing import Any

import sqlalchemy as sa
from sqlalchemy import bindparam, func, select
from sqlalchemy.ext.asyncio import AsyncSession

from storage.hot_path.statements import Direct
from storage.models import AnswerChoice, Member, QuestionAnswer, Response


@dataclass(frozen=True)
class Tally:
    """Submitted responses counted in SQL: respondents, per question and per option."""

    respondents: int
    seen: dict[str, int]
    chosen: dict[tuple[str, str], int]


@dataclass(frozen=True)
class DataVersion:
    """What the results are computed from, in two cheap numbers: how many responses are
    submitted, and the latest change to one of them (a submission, an edit: every stored
    answer dates its response's `updated_at`). A submission, an edit or an erasure changes it.
    Read from the database, so that every instance of the bot sees every instance's changes."""

    submitted: int
    last_change: datetime | None


def _submitted_in(consultation: Any) -> Any:
    return (Response.consultation_id == consultation) & (Response.status == "submitted")


@dataclass(frozen=True)
class _TallyStatements:
    submitted: Any
    last_change: Any
    seen: Any
    chosen: Any


@cache
def _tally_statements() -> _TallyStatements:
    """Built once: run by storage/hot_path/statements.py's `reading_aside`, off the loop."""
    submitted = _submitted_in(bindparam("c"))
    responses = select(func.count()).select_from(Response).where(submitted)
    return _TallyStatements(
        # Two statements, not one: each is an index-only scan of ix_responses_submitted, and
        # max() alone is a single index probe (together SQLite visits every entry twice).
        submitted=responses,
        last_change=select(func.max(Response.updated_at)).where(submitted),
        seen=select(QuestionAnswer.question_id, func.count())
        .join(Response, Response.id == QuestionAnswer.response_id)
        .where(submitted)
        .group_by(QuestionAnswer.question_id),
        chosen=select(AnswerChoice.question_id, AnswerChoice.option_id, func.count())
        .join(Response, Response.id == AnswerChoice.response_id)
        .where(submitted)
        .group_by(AnswerChoice.question_id, AnswerChoice.option_id),
    )


def _utc(value: datetime | str | None) -> datetime | None:
    """A timestamp as a direct read gives it: aware (asyncpg) or naive UTC text (SQLite)."""
    if value is None:
        return None
    moment = datetime.fromisoformat(value) if isinstance(value, str) else value
    return moment.replace(tzinfo=UTC) if moment.tzinfo is None else moment.astimezone(UTC)


async def data_version(session: AsyncSession, consultation_id: str) -> DataVersion:
    """The submitted responses' version (an index-only read, off the event loop)."""
    sql = _tally_statements()
    async with Direct.of_session(session).reading_aside() as db:
        count = (await db.rows(sql.submitted, {"c": consultation_id}))[0][0]
        last = (await db.rows(sql.last_change, {"c": consultation_id}))[0][0]
    return DataVersion(int(count or 0), _utc(last))


async def tally(session: AsyncSession, consultation_id: str) -> Tally:
    """Counted by the database (GROUP BY), read off the event loop: seconds of SQLite's work
    at 100,000 responses must not stop every member's taps. Committed data only: it reads on
    a connection of its own, not in `session`'s transaction."""
    sql = _tally_statements()
    params = {"c": consultation_id}
    async with Direct.of_session(session).reading_aside() as db:
        respondents = (await db.rows(sql.submitted, params))[0][0]
        seen_rows = await db.rows(sql.seen, params)
        chosen_rows = await db.rows(sql.chosen, params)
    return Tally(
        respondents=int(respondents or 0),
        seen={qid: n for qid, n in seen_rows},
        chosen={(qid, oid): n for qid, oid, n in chosen_rows},
    )


async def respondents_by_commune(
    session: AsyncSession, consultation_id: str
) -> dict[str | None, int]:
    """Submitted responses per commune of their authors (None: no commune given)."""
    rows = await session.execute(
        select(Member.commune, func.count())
        .select_from(Response)
        .join(Member, Member.id == Response.member_id)
        .where(Response.consultation_id == consultation_id, Response.status == "submitted")
        .group_by(Member.commune)
    )
    return {commune: n for commune, n in rows}


@cache
def _by_commune_statements() -> _TallyStatements:
    """`_tally_statements` grouped by the respondents' commune as well; built once."""
    submitted = _submitted_in(bindparam("c"))
    by_member = Member.id == Response.member_id
    return _TallyStatements(
        submitted=select(Member.commune, func.count())
        .select_from(Response)
        .join(Member, by_member)
        .where(submitted)
        .group_by(Member.commune),
        last_change=None,
        seen=select(Member.commune, QuestionAnswer.question_id, func.count())
        .select_from(QuestionAnswer)
        .join(Response, Response.id == QuestionAnswer.response_id)
        .join(Member, by_member)
        .where(submitted)
        .group_by(Member.commune, QuestionAnswer.question_id),
        chosen=select(
            Member.commune, AnswerChoice.question_id, AnswerChoice.option_id, func.count()
        )
        .select_from(AnswerChoice)
        .join(Response, Response.id == AnswerChoice.response_id)
        .join(Member, by_member)
        .where(submitted)
        .group_by(Member.commune, AnswerChoice.question_id, AnswerChoice.option_id),
    )


async def tally_by_commune(session: AsyncSession, consultation_id: str) -> dict[str | None, Tally]:
    """`tally` per commune of the respondents (GROUP BY members.commune): None holds those who
    gave none (rather not say, never asked). The groups add up to the network's tally. Read
    off the event loop, committed data only, as `tally`."""
    sql = _by_commune_statements()
    params = {"c": consultation_id}
    async with Direct.of_session(session).reading_aside() as db:
        respondents = await db.rows(sql.submitted, params)
        seen_rows = await db.rows(sql.seen, params)
        chosen_rows = await db.rows(sql.chosen, params)
    out = {commune: Tally(int(n), {}, {}) for commune, n in respondents}
    # setdefault: a response erased (/forget) between two reads leaves no hole.
    for commune, qid, n in seen_rows:
        out.setdefault(commune, Tally(0, {}, {})).seen[qid] = n
    for commune, qid, oid, n in chosen_rows:
        out.setdefault(commune, Tally(0, {}, {})).chosen[(qid, oid)] = n
    return out


@dataclass(frozen=True)
class FreeText:
    """One submitted free-text answer, without who wrote it (results never say who answered)."""

    question_id: str
    text: str
    submitted_at: datetime | None


async def free_text_answers(
    session: AsyncSession,
    consultation_id: str,
    question_ids: Iterable[str],
    limit: int | None = None,
) -> list[FreeText]:
    """Non-empty answers to the given text questions of submitted responses, newest first."""
    ids = list(question_ids)
    if not ids:
        return []
    query = (
        select(QuestionAnswer.question_id, QuestionAnswer.text, Response.submitted_at)
        .join(Response, Response.id == QuestionAnswer.response_id)
        .where(
            Response.consultation_id == consultation_id,
            Response.status == "submitted",
            QuestionAnswer.question_id.in_(ids),
            QuestionAnswer.text.is_not(None),
            QuestionAnswer.text != "",
        )
        .order_by(Response.submitted_at.desc(), Response.id.desc())
    )
    if limit is not None:
        query = query.limit(limit)
    rows = await session.execute(query)
    return [FreeText(qid, text, at) for qid, text, at in rows]


@cache
def _free_text_statements() -> tuple[Any, Any]:
    """(counts per question, the latest answers of one question): run off the loop."""
    given = (
        _submitted_in(bindparam("c"))
        & QuestionAnswer.text.is_not(None)
        & (QuestionAnswer.text != "")
    )
    counts = (
        select(QuestionAnswer.question_id, func.count())
        .join(Response, Response.id == QuestionAnswer.response_id)
        .where(given)
        .group_by(QuestionAnswer.question_id)
    )
    latest = (
        select(QuestionAnswer.text, Response.submitted_at)
        .join(Response, Response.id == QuestionAnswer.response_id)
        .where(given & (QuestionAnswer.question_id == bindparam("q")))
        .order_by(Response.submitted_at.desc(), Response.id.desc())
        .limit(bindparam("n", type_=sa.Integer()))
    )
    return counts, latest


async def free_text_counts(session: AsyncSession, consultation_id: str) -> dict[str, int]:
    """How many submitted responses hold a non-empty free text, per question (off the loop)."""
    counts, _latest = _free_text_statements()
    async with Direct.of_session(session).reading_aside() as db:
        rows = await db.rows(counts, {"c": consultation_id})
    return {qid: n for qid, n in rows}


async def latest_free_texts(
    session: AsyncSession, consultation_id: str, question_id: str, limit: int
) -> list[FreeText]:
    """The `limit` newest non-empty answers to one text question (off the loop)."""
    _counts, latest = _free_text_statements()
    params = {"c": consultation_id, "q": question_id, "n": limit}
    async with Direct.of_session(session).reading_aside() as db:
        rows = await db.rows(latest, params)
    return [FreeText(question_id, text, _utc(at)) for text, at in rows]
