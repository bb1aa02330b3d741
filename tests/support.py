"""Helpers shared by the test layers: consultation files with dates around now, databases."""

from __future__ import annotations

import os
import secrets
from collections.abc import Mapping, Sequence
from datetime import datetime, timedelta
from pathlib import Path
from typing import TYPE_CHECKING, Any

import yaml

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.consultation import Consultation

REPO = Path(__file__).resolve().parent.parent
DEFAULT_CONSULTATION = REPO / "consultations" / "deconfinement.yaml"
POSTGRES_URL = os.environ.get(
    "TEST_POSTGRES_URL", "postgresql+asyncpg://postgres@127.0.0.1:5432/test"
)
REDIS_URL = os.environ.get("TEST_REDIS_URL", "redis://127.0.0.1:6379/15")


def _own_redis_database(url: str, worker: str | None) -> str:
    """Under pytest-xdist each worker gets the next Redis database (gw0: the given one, gw1:
    the one after…): tests flush theirs, and must not flush another worker's."""
    if not worker or not worker.startswith("gw"):
        return url
    base, _, db = url.rpartition("/")
    first = int(db) if db.isdigit() else 0
    return f"{base}/{(first + int(worker[2:])) % 16}"


REDIS_URL = _own_redis_database(REDIS_URL, os.environ.get("PYTEST_XDIST_WORKER"))


async def postgres_database(name: str, create: bool, server_url: str = POSTGRES_URL) -> str:
    """Create (or drop) a PostgreSQL database on the server; its URL."""
    from sqlalchemy import text
    from sqlalchemy.engine import make_url
    from sqlalchemy.ext.asyncio import create_async_engine

    engine = create_async_engine(server_url, isolation_level="AUTOCOMMIT")
    sql = (
        f'CREATE DATABASE "{name}"' if create else f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'
    )
    try:
        async with engine.connect() as conn:
            await conn.execute(text(sql))
    finally:
        await engine.dispose()
    return make_url(server_url).set(database=name).render_as_string(hide_password=False)


def default_document() -> dict[str, Any]:
    """The default consultation's document; its communes file named absolutely, so that a
    copy written anywhere finds it."""
    from bot.consultation import with_absolute_files

    document = yaml.safe_load(DEFAULT_CONSULTATION.read_text(encoding="utf-8"))
    return with_absolute_files(document, DEFAULT_CONSULTATION.parent)


def with_dates(
    document: dict[str, Any], dates: Mapping[str, tuple[datetime, datetime]]
) -> dict[str, Any]:
    """A copy whose phases (by id) get aware ISO dates; others are pushed out of the way."""
    doc = yaml.safe_load(yaml.safe_dump(document, allow_unicode=True))
    for phase in doc["phases"]:
        if phase["id"] in dates:
            starts, ends = dates[phase["id"]]
            phase["starts"], phase["ends"] = starts.isoformat(), ends.isoformat()
    return doc


def write_document(path: Path, document: dict[str, Any]) -> Path:
    path.write_text(yaml.safe_dump(document, allow_unicode=True, sort_keys=False), encoding="utf-8")
    return path


def survey_now(now: datetime, survey_days: float = 10) -> dict[str, tuple[datetime, datetime]]:
    """Dates where the survey is open at `now`, results and ideas follow."""
    s0 = now - timedelta(days=1)
    s1 = now + timedelta(days=survey_days)
    return {
        "survey": (s0, s1),
        "results": (s1 + timedelta(minutes=1), s1 + timedelta(days=2)),
        "ideas": (s1 + timedelta(days=3), s1 + timedelta(days=300)),
    }


def unique_name(prefix: str) -> str:
    return f"{prefix}_{secrets.token_hex(4)}"


# The seed's phase-2 counts (10 respondents; the strategy axes asked of the 8 who chose the
# joint strategy); ties keep the file's order.
SEED_COUNTS: dict[str, dict[str, int]] = {
    "challenges": {
        "inclusion": 7,
        "living_together": 8,
        "strategy": 8,
        "nuisances": 1,
        "rehabilitation": 1,
    },
    "strategy_axes": {
        "local_approach": 7,
        "communication": 6,
        "professionals": 5,
        "impact_evaluation": 4,
        "local_economy": 1,
    },
    "inclusion": {
        "participation": 7,
        "social_inclusion": 7,
        "youth": 5,
        "addictions": 4,
        "migrants": 3,
        "digital": 3,
        "schooling": 2,
    },
    "living_together": {
        "public_space": 7,
        "attacks_persons": 6,
        "polarisation": 4,
        "attacks_property": 1,
    },
    "nuisances": {
        "drugs": 7,
        "incivilities": 6,
        "prostitution": 3,
        "night_life": 2,
        "financial_crime": 2,
    },
}
SEED_RESPONDENTS = 10


def seed_answers() -> list[dict[str, list[str]]]:
    """Ten members' answers whose counts are the seed's. Every member answers every question
    asked of them: a conditional question (strategy_axes: those who chose the joint strategy)
    is answered only by those it is asked of."""
    asked_if = {
        q["id"]: (q["when"]["question"], set(q["when"]["any"]))
        for q in default_document()["questions"]
        if "when" in q
    }
    members: list[dict[str, list[str]]] = [{} for _ in range(SEED_RESPONDENTS)]
    for question, counts in SEED_COUNTS.items():
        ring = [
            m
            for m in members
            if question not in asked_if
            or set(m.get(asked_if[question][0], [])) & asked_if[question][1]
        ]
        offset = 0
        for option, count in counts.items():
            # Consecutive windows around the ring: every member gets at least one choice.
            for t in range(count):
                ring[(offset + t) % len(ring)].setdefault(question, []).append(option)
            offset += count
    for i, member in enumerate(members):
        member["rehab_priority"] = ["yes"] if i < 4 else ["no"]
        if i < 3:
            member["rehab_focus"] = ["victims"]
        elif i == 3:
            member["rehab_focus"] = ["authors"]
    return members


def record_calls(client: Any, method: str) -> list[str]:
    """Wrap `client.<method>` (a Redis command, say) so that the name each call was given is
    recorded in the returned list; the call itself goes through."""
    calls: list[str] = []
    real = getattr(client, method)

    async def recording(name: str, *args: Any, **kwargs: Any) -> Any:
        calls.append(name)
        return await real(name, *args, **kwargs)

    setattr(client, method, recording)
    return calls


async def answer_survey(
    session: AsyncSession,
    consultation: Consultation,
    member_id: int,
    answers: Mapping[str, Sequence[str] | str],
    now: datetime | None = None,
    submit: bool = True,
) -> None:
    """Store a member's answers (choices, or a text) the way the bot does, through
    SurveyService, then submit them unless `submit` is False. The member must exist. `now`
    (by default the middle of the survey phase) must fall while the survey is open.

    Commits `session` first: the service writes on a connection of its own, which would
    wait for the session's pending writes."""
    from bot.consultation import PhaseKind
    from bot.survey.service import SurveyService

    await session.commit()
    if now is None:
        survey = consultation.phase(PhaseKind.SURVEY)
        assert survey is not None
        now = survey.starts + (survey.ends - survey.starts) / 2
    service = SurveyService(session, consultation)
    for question_id, answer in answers.items():
        question = consultation.question(question_id)
        assert question is not None, question_id
        if isinstance(answer, str):
            await service.save(member_id, question, [], answer, now)
        else:
            await service.save(member_id, question, list(answer), None, now)
    if submit:
        assert await service.submit(member_id, now), f"member {member_id}: an answer is missing"


def consultation_with_notes() -> Consultation:
    """The default consultation and, last, a free-text question `notes` (optional) asked of
    those who chose `inclusion` among the challenges: a text answer that a change can hide."""
    from bot.consultation import parse_consultation

    document = default_document()
    notes = {
        "id": "notes",
        "kind": "text",
        "text": {"fr": "Une remarque ?", "nl": "Een opmerking?", "en": "A remark?"},
        "min": 0,
        "when": {"question": "challenges", "any": ["inclusion"]},
    }
    document["questions"].append(notes)
    return parse_consultation(yaml.safe_dump(document, allow_unicode=True))


# A tap on a message with a keyboard, as getUpdates gives it.
TAP_UPDATE = {
    "update_id": 7,
    "callback_query": {
        "id": "42",
        "from": {"id": 1, "is_bot": False, "first_name": "Amélie", "language_code": "fr"},
        "chat_instance": "c",
        "data": "s:q1:3",
        "message": {
            "message_id": 9,
            "date": 1600000000,
            "chat": {"id": 1, "type": "private"},
            "text": "Question",
            "reply_markup": {"inline_keyboard": [[{"text": "a", "callback_data": "b"}]]},
        },
    },
}
