"""The consultation file's models: what a consultation is once its file is read."""

from __future__ import annotations

import re
from datetime import datetime, timedelta
from enum import StrEnum
from typing import Literal
from zoneinfo import ZoneInfo

from pydantic import BaseModel, ConfigDict, Field, field_validator

from bot.communes.model import Commune
from bot.phases.kinds import PhaseKind
from bot.survey.kinds import kind_named, kind_of

# Inline button texts wrap badly on phones past this; callback data needs short ids.
MAX_LABEL_CHARS = 40
ID_PATTERN = re.compile(r"^[a-z0-9_]{1,24}$")
DURATION_PATTERN = re.compile(r"^\s*(\d+)\s*([mhdw])\s*$")
_DURATION_UNITS = {"m": "minutes", "h": "hours", "d": "days", "w": "weeks"}

Text = dict[str, str]


class Role(StrEnum):
    AMBASSADOR = "ambassador"
    OFFICIAL = "official"
    MODERATOR = "moderator"


def parse_duration(value: str | int | timedelta) -> timedelta:
    """'48h', '7d', '30m', '2w' -> timedelta."""
    if isinstance(value, timedelta):
        return value
    match = DURATION_PATTERN.match(str(value))
    if not match:
        raise ValueError(f"not a duration: {value!r} (write e.g. 30m, 48h, 7d or 2w)")
    amount, unit = match.groups()
    return timedelta(**{_DURATION_UNITS[unit]: int(amount)})


class _Model(BaseModel):
    model_config = ConfigDict(extra="forbid", frozen=True)


class Option(_Model):
    id: str
    label: Text
    text: Text | None = None


class Condition(_Model):
    question: str
    any: list[str] = Field(min_length=1)


class Question(_Model):
    id: str
    kind: str  # a key of QUESTION_KINDS (bot/survey/kinds.py), checked below
    text: Text
    options: list[Option] = Field(default_factory=list)
    min: int | None = Field(default=None, ge=0)
    max: int | None = Field(default=None, ge=1)
    when: Condition | None = None
    max_length: int = Field(default=1000, ge=1, le=4000)
    # The options are a scale (yes / no / don't know, never … always): results keep the
    # file's order instead of ranking them by count.
    ordered: bool = False

    @field_validator("kind", mode="before")
    @classmethod
    def _known_kind(cls, value: object) -> object:
        kind_named(value)  # the same message pydantic gave for a Literal
        return value

    @property
    def min_choices(self) -> int:
        return kind_of(self).min_choices(self)

    @property
    def max_choices(self) -> int:
        return kind_of(self).max_choices(self)

    def option(self, option_id: str) -> Option | None:
        return next((o for o in self.options if o.id == option_id), None)


class Project(_Model):
    id: str
    title: Text
    description: Text | None = None


class Phase(_Model):
    id: str
    kind: PhaseKind
    title: Text
    description: Text | None = None
    starts: datetime
    ends: datetime
    reminders: list[timedelta] = Field(default_factory=list)
    audience: list[Role] = Field(default_factory=list)
    # Results: roles of the audience who get the charts pushed (text, album, summary) rather
    # than one summary with a "📊" button (bot/results/delivery.py).
    push_charts: list[Role] = Field(default_factory=list)
    projects: list[Project] = Field(default_factory=list)
    digest: timedelta | None = None
    # Results phases: the organisers' draft commentary, sent after the data once they have
    # approved it (or their edit of it) with the real counts in front of them.
    commentary: Text | None = None

    @field_validator("starts", "ends", mode="before")
    @classmethod
    def _parse_datetime(cls, value: object) -> object:
        if isinstance(value, str):
            try:
                return datetime.fromisoformat(value.strip())
            except ValueError:
                raise ValueError(
                    f"not a date and time: {value!r} (write e.g. 2020-05-04 00:00)"
                ) from None
        return value

    @field_validator("reminders", mode="before")
    @classmethod
    def _parse_reminders(cls, value: object) -> object:
        if isinstance(value, list):
            return [parse_duration(v) for v in value]
        return value

    @field_validator("digest", mode="before")
    @classmethod
    def _parse_digest(cls, value: object) -> object:
        return None if value is None else parse_duration(value)  # type: ignore[arg-type]

    def project(self, project_id: str) -> Project | None:
        return next((p for p in self.projects if p.id == project_id), None)


class ResultsSettings(_Model):
    """`results:` of the consultation file: how results are shown per commune."""

    # A commune's figures are shown beside the network's only from this many respondents
    # (bot/results/communes.py): fewer could point at a person.
    min_group: int = 5


class Consultation(_Model):
    id: str
    # A text per language; a plain string (one name for every language) is accepted too.
    organizer: Text | str
    timezone: str = "UTC"
    languages: list[str] = Field(min_length=1)
    access: Literal["open", "invite"] = "open"
    title: Text
    intro: Text | None = None
    phases: list[Phase] = Field(min_length=1)
    questions: list[Question] = Field(default_factory=list)
    # The network's communes (bot/communes/); empty: the bot never asks for one.
    communes: list[Commune] = Field(default_factory=list)
    results: ResultsSettings = Field(default_factory=ResultsSettings)

    @property
    def source_language(self) -> str:
        return self.languages[0]

    @property
    def tz(self) -> ZoneInfo:
        return ZoneInfo(self.timezone)

    def question(self, question_id: str) -> Question | None:
        return next((q for q in self.questions if q.id == question_id), None)

    def phase(self, kind: PhaseKind) -> Phase | None:
        return next((p for p in self.phases if p.kind == kind), None)

    def commune(self, commune_id: str | None) -> Commune | None:
        return next((m for m in self.communes if m.id == commune_id), None)

    def text(self, value: Text | str | None, lang: str) -> str:
        """A consultation text in `lang`, falling back to the source language."""
        if not value:
            return ""
        if isinstance(value, str):
            return value
        return value.get(lang) or value.get(self.source_language) or next(iter(value.values()))
