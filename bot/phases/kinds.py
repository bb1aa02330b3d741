"""Phase kinds: one class per kind, registered once in PHASE_TYPES.

A kind says everything that differs between a survey, a results and an ideas phase: which
keys of the consultation file it takes and what it requires of them, how long it lasts in a
rehearsal, the events it adds to the timeline, what its opening, reminders and closing do,
and the flags it gives the main menu. Adding a kind is adding a member to PhaseKind and a
class here (with its texts in the catalogs, and a button in the menu's window if it has one).

bot.consultation imports this module to validate a file, so it imports nothing of the bot at
load time: what a kind does (the outbox, Telegram, the services) is imported inside the
method that does it.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable, Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from enum import StrEnum
from typing import TYPE_CHECKING, Any, ClassVar, Protocol

if TYPE_CHECKING:
    from sqlalchemy.ext.asyncio import AsyncSession

    from bot.consultation import Consultation, Loc, Phase
    from bot.context import AppContext
    from bot.phases.timeline import Transition
    from bot.services import AppServices, UpdateServices
    from storage.repositories.members import MemberRecord

    Located = Iterator[tuple[Loc, str]]


# A results commentary is one message with its heading (Telegram: 4096 characters at most).
COMMENTARY_CHARS = 3500


class PhaseKind(StrEnum):
    """The `kind:` of a phase in the consultation file."""

    SURVEY = "survey"
    RESULTS = "results"
    IDEAS = "ideas"


class TextCheck(Protocol):
    def __call__(self, loc: Loc, value: dict[str, str] | None, label: bool = False) -> Located:
        """A text in every language of the consultation (a button label: short enough)."""
        ...


class IdCheck(Protocol):
    def __call__(self, loc: Loc, items: list[Any], what: str) -> Located:
        """Well-formed ids, none twice."""
        ...


@dataclass(frozen=True)
class FileChecks:
    """The file-wide checks a kind applies to its own keys (they know the languages)."""

    texts: TextCheck
    ids: IdCheck


Preparation = Callable[["AppContext", "AppServices"], Awaitable[None]]


@dataclass(frozen=True)
class PhaseRun:
    """One transition of one phase being performed, within its transaction: what each step
    of a kind (opening, reminder, digest, closing) works with."""

    session: AsyncSession
    app: AppContext
    services: AppServices
    phase: Phase
    now: datetime


class PhaseType:
    """What a phase of one kind is and does; the base does nothing a kind may leave out."""

    kind: ClassVar[PhaseKind]
    # Keys of a phase that only phases of this kind take, and what a file giving one to a
    # phase of another kind is told.
    keys: ClassVar[Mapping[str, str]] = {}
    # How long the phase lasts in `consultbot rehearse` unless the command line says otherwise.
    rehearsal_length: ClassVar[timedelta]
    # Roles (bot.consultation.Role values) told that the phase opens, when `opened` announces it.
    announced_to: ClassVar[tuple[str, ...]] = ()

    # ---------------------------------------------------------------- the consultation file

    def problems(self, phase: Phase, loc: Loc, checks: FileChecks) -> Located:
        """What is wrong with the keys of this kind in `phase` (located at `loc`)."""
        return iter(())

    def consultation_problems(self, consultation: Consultation) -> Located:
        """What a phase of this kind requires of the rest of the file."""
        return iter(())

    # ---------------------------------------------------------------- the timeline

    def events(self, phase: Phase, order: int) -> list[Transition]:
        """Events of the phase besides its opening, closing and reminders."""
        return []

    def rehearsal_keys(self, phase: Phase, ratio: float) -> dict[str, timedelta]:
        """Periods of the phase to write, scaled, into a rehearsal's compressed copy."""
        return {}

    # ---------------------------------------------------------------- transitions

    def opening_preparation(self) -> Preparation | None:
        """Work to do before the opening's transaction and outside it (rendering charts takes
        seconds: no write lock may be held meanwhile); None when there is none."""
        return None

    async def opened(self, run: PhaseRun) -> str:
        """What the opening does, within its transaction; the outcome recorded. By default,
        the opening is announced to the members holding one of the roles `announced_to`."""
        from bot.consultation import Role
        from bot.phases import transitions

        roles = [Role(role) for role in self.announced_to]
        return await transitions.announce_phase(run, roles)

    async def opened_late(self, run: PhaseRun) -> str | None:
        """The opening, caught up after the whole phase passed while the bot was down; None to
        skip it (an announcement for a phase already over would mislead)."""
        return None

    async def reminded(self, run: PhaseRun, before_end: int) -> str:
        raise NotImplementedError(f"a {self.kind} phase has no reminders")

    async def digested(self, run: PhaseRun, event: Transition) -> str:
        raise NotImplementedError(f"a {self.kind} phase has no digests")

    async def closed(self, run: PhaseRun) -> str:
        return "closed"

    # ---------------------------------------------------------------- the main menu

    async def menu_flags(
        self, app: AppContext, services: UpdateServices, member: MemberRecord | None, now: datetime
    ) -> dict[str, bool]:
        """The menu getter's flags that show this kind's buttons (`when=` in the menu)."""
        return {}


class SurveyPhase(PhaseType):
    kind = PhaseKind.SURVEY
    keys: ClassVar[Mapping[str, str]] = {"reminders": "reminders are for survey phases"}
    rehearsal_length = timedelta(minutes=10)
    announced_to = ("ambassador",)

    def consultation_problems(self, consultation: Consultation) -> Located:
        if not consultation.questions:
            yield ("questions",), "a survey phase needs at least one question"

    async def reminded(self, run: PhaseRun, before_end: int) -> str:
        from bot.phases import transitions

        return await transitions.remind(run, before_end)

    async def closed(self, run: PhaseRun) -> str:
        # The counts are final: the organisers review the results commentary beside them.
        from bot.phases import transitions

        return await transitions.open_commentary_review(run)

    async def menu_flags(
        self, app: AppContext, services: UpdateServices, member: MemberRecord | None, now: datetime
    ) -> dict[str, bool]:
        survey = services.survey
        # None: no button, the survey is closed (or the reader not a member).
        status = (
            await survey.status(member.id) if member is not None and survey.is_open(now) else None
        )
        return {
            "survey_new": status == "none",
            "survey_draft": status == "draft",
            "survey_done": status == "submitted",
        }


class ResultsPhase(PhaseType):
    kind = PhaseKind.RESULTS
    keys: ClassVar[Mapping[str, str]] = {
        "audience": "audience is for results phases",
        "push_charts": "push_charts is for results phases",
        "commentary": "commentary is for results phases",
    }
    rehearsal_length = timedelta(minutes=5)

    def problems(self, phase: Phase, loc: Loc, checks: FileChecks) -> Located:
        if not phase.audience:
            yield (*loc, "audience"), "say who receives the results, e.g. [official, ambassador]"
        # By default each recipient gets one message and asks for the charts (📊); the roles
        # listed get them pushed: 1 + charts + 1 messages each, as Telegram counts them.
        for j, role in enumerate(phase.push_charts):
            if role not in phase.audience:
                yield (*loc, "push_charts", j), f"{role} is not in this phase's audience"
        yield from checks.texts((*loc, "commentary"), phase.commentary)
        for lang, text in (phase.commentary or {}).items():
            if len(text) > COMMENTARY_CHARS:
                yield (
                    (*loc, "commentary", lang),
                    f"too long for one message ({len(text)} characters, at most "
                    f"{COMMENTARY_CHARS})",
                )

    def opening_preparation(self) -> Preparation | None:
        from bot.phases import transitions

        return transitions.render_results_charts

    async def opened(self, run: PhaseRun) -> str:
        from bot.phases import transitions

        return await transitions.broadcast_results(run)

    async def opened_late(self, run: PhaseRun) -> str | None:
        # The results are still due, with a note saying why they come late.
        from bot.phases import transitions

        return await transitions.broadcast_results(run, late=True)

    async def menu_flags(
        self, app: AppContext, services: UpdateServices, member: MemberRecord | None, now: datetime
    ) -> dict[str, bool]:
        from bot.results.view import may_see_results

        return {"results": may_see_results(app, member)}


class IdeasPhase(PhaseType):
    kind = PhaseKind.IDEAS
    keys: ClassVar[Mapping[str, str]] = {
        "projects": "projects are for ideas phases",
        "digest": "digest is for ideas phases",
    }
    rehearsal_length = timedelta(minutes=30)
    announced_to = ("ambassador", "official")
    # Officials' digest of approved ideas, unless the file says `digest:`.
    default_digest = timedelta(days=7)
    # In a rehearsal, digests no closer together than this, however short the phase.
    min_rehearsal_digest = timedelta(minutes=5)

    def problems(self, phase: Phase, loc: Loc, checks: FileChecks) -> Located:
        if not phase.projects:
            yield (*loc, "projects"), "an ideas phase needs at least one project"
        yield from checks.ids((*loc, "projects"), phase.projects, "project")
        for j, project in enumerate(phase.projects):
            yield from checks.texts((*loc, "projects", j, "title"), project.title, label=True)
            yield from checks.texts((*loc, "projects", j, "description"), project.description)

    def events(self, phase: Phase, order: int) -> list[Transition]:
        """A digest every `digest` period after the opening, and a last one at the end."""
        from bot.phases.timeline import Edge, Transition

        period = phase.digest or self.default_digest
        out = []
        n, at = 1, phase.starts + period
        while at < phase.ends:
            out.append(Transition(at, order, phase.id, Edge.DIGEST, n))
            n, at = n + 1, at + period
        out.append(Transition(phase.ends, order, phase.id, Edge.DIGEST, n))
        return out

    def rehearsal_keys(self, phase: Phase, ratio: float) -> dict[str, timedelta]:
        digest = (phase.digest or self.default_digest) * ratio
        return {"digest": max(digest, self.min_rehearsal_digest)}

    async def digested(self, run: PhaseRun, event: Transition) -> str:
        from bot.phases import transitions

        return await transitions.send_digest(run, event)

    async def menu_flags(
        self, app: AppContext, services: UpdateServices, member: MemberRecord | None, now: datetime
    ) -> dict[str, bool]:
        return {"ideas": app.timeline.has_started(self.kind, now)}


# The registry: the file's `kind:` -> what a phase of that kind is and does.
PHASE_TYPES: dict[PhaseKind, PhaseType] = {
    t.kind: t for t in (SurveyPhase(), ResultsPhase(), IdeasPhase())
}


def phase_type(kind: PhaseKind | str) -> PhaseType:
    return PHASE_TYPES[PhaseKind(kind)]


def kind_problems(phase: Phase, loc: Loc, checks: FileChecks) -> list[tuple[Loc, str]]:
    """What is wrong with `phase`'s kind-specific keys: its own kind's requirements, and the
    keys of other kinds it was given; in the order of the keys in the phase model."""
    own = phase_type(phase.kind)
    found = list(own.problems(phase, loc, checks))
    foreign: dict[str, str] = {}
    for other in PHASE_TYPES.values():
        for key, message in other.keys.items():
            foreign.setdefault(key, message)
    for key, message in foreign.items():
        if key not in own.keys and getattr(phase, key) not in (None, []):
            found.append(((*loc, key), message))
    fields = list(type(phase).model_fields)
    return sorted(found, key=lambda problem: fields.index(str(problem[0][len(loc)])))
