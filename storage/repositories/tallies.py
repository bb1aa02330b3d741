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
from storage.models import QuestionAnswer, Response, TallyCount


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
    counts: Any
    free_texts: Any


# tally_counts' rows (storage/models.py, TallyCount): '' for no commune, no question (the
# respondents) or no option (the question answered); '*' a free text given.
NO_COMMUNE = ""
RESPONDENTS = ""
ANSWERED = ""
FREE_TEXT = "*"


# The counted rows, for `tallies_of`.
COUNTS = select(TallyCount.commune, TallyCount.question_id, TallyCount.option_id, TallyCount.n)


@cache
def _tally_statements() -> _TallyStatements:
    """Built once: run by storage/hot_path/statements.py's `reading_aside`, off the loop."""
    submitted = _submitted_in(bindparam("c"))
    responses = select(func.count()).select_from(Response).where(submitted)
    mine = (TallyCount.consultation_id == bindparam("c")) & (TallyCount.n != 0)
    return _TallyStatements(
        # Two statements, not one: each is an index-only scan of ix_responses_submitted, and
        # max() alone is a single index probe (together SQLite visits every entry twice).
        submitted=responses,
        last_change=select(func.max(Response.updated_at)).where(submitted),
        # Kept by the database's triggers as answers change (migration 0015): a few hundred
        # rows, where counting the answers took seconds at 100,000 responses.
        counts=COUNTS.where(mine),
        free_texts=select(TallyCount.question_id, func.sum(TallyCount.n))
        .where(mine & (TallyCount.option_id == FREE_TEXT))
        .group_by(TallyCount.question_id),
    )


def _commune(stored: str) -> str | None:
    return None if stored == NO_COMMUNE else stored


def tallies_of(rows: Iterable[Any]) -> dict[str | None, Tally]:
    """Each commune's Tally from its counted rows (None: no commune given)."""
    out: dict[str | None, Tally] = {}
    for stored, qid, oid, n in rows:
        commune = _commune(stored)
        tally = out.setdefault(commune, Tally(0, {}, {}))
        if qid == RESPONDENTS:
            out[commune] = Tally(int(n), tally.seen, tally.chosen)
        elif oid == ANSWERED:
            tally.seen[qid] = int(n)
        elif oid != FREE_TEXT:
            tally.chosen[(qid, oid)] = int(n)
    return out


def add(tallies: Iterable[Tally]) -> Tally:
    """Tallies summed: the network's is its communes'."""
    parts = list(tallies)
    seen: dict[str, int] = {}
    chosen: dict[tuple[str, str], int] = {}
    for part in parts:
        for qid, n in part.seen.items():
            seen[qid] = seen.get(qid, 0) + n
        for key, n in part.chosen.items():
            chosen[key] = chosen.get(key, 0) + n
    return Tally(sum(part.respondents for part in parts), seen, chosen)


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
    """The submitted responses counted, in the network. Committed data only: it reads on a
    connection of its own, off the event loop, not in `session`'s transaction."""
    return add((await tally_by_commune(session, consultation_id)).values())


async def tally_by_commune(session: AsyncSession, consultation_id: str) -> dict[str | None, Tally]:
    """`tally` per commune of the respondents: None holds those who gave none (rather not
    say, never asked). The groups add up to the network's tally. Read off the event loop,
    committed data only, as `tally`."""
    async with Direct.of_session(session).reading_aside() as db:
        rows = await db.rows(_tally_statements().counts, {"c": consultation_id})
    return tallies_of(rows)


async def respondents_by_commune(
    session: AsyncSession, consultation_id: str
) -> dict[str | None, int]:
    """Submitted responses per commune of their authors (None: no commune given)."""
    rows = await session.execute(
        select(TallyCount.commune, TallyCount.n).where(
            TallyCount.consultation_id == consultation_id,
            TallyCount.question_id == RESPONDENTS,
            TallyCount.n != 0,
        )
    )
    return {_commune(stored): n for stored, n in rows}


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
def _latest_free_texts() -> Any:
    """The latest answers of one text question: run off the loop."""
    given = (
        _submitted_in(bindparam("c"))
        & QuestionAnswer.text.is_not(None)
        & (QuestionAnswer.text != "")
    )
    return (
        select(QuestionAnswer.text, Response.submitted_at)
        .join(Response, Response.id == QuestionAnswer.response_id)
        .where(given & (QuestionAnswer.question_id == bindparam("q")))
        .order_by(Response.submitted_at.desc(), Response.id.desc())
        .limit(bindparam("n", type_=sa.Integer()))
    )


async def free_text_counts(session: AsyncSession, consultation_id: str) -> dict[str, int]:
    """How many submitted responses hold a non-empty free text, per question (off the loop)."""
    async with Direct.of_session(session).reading_aside() as db:
        rows = await db.rows(_tally_statements().free_texts, {"c": consultation_id})
    return {qid: int(n) for qid, n in rows}


async def latest_free_texts(
    session: AsyncSession, consultation_id: str, question_id: str, limit: int
) -> list[FreeText]:
    """The `limit` newest non-empty answers to one text question (off the loop)."""
    params = {"c": consultation_id, "q": question_id, "n": limit}
    async with Direct.of_session(session).reading_aside() as db:
        rows = await db.rows(_latest_free_texts(), params)
    return [FreeText(question_id, text, _utc(at)) for text, at in rows]
