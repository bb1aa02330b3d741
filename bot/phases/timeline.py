"""The timeline: which phase is open at a given instant, and the transitions between phases."""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from enum import StrEnum

from bot.consultation import Consultation, Phase, PhaseKind
from bot.phases.kinds import phase_type


class Edge(StrEnum):
    OPEN = "open"
    CLOSE = "close"
    REMIND = "remind"
    DIGEST = "digest"


@dataclass(frozen=True, order=True)
class Transition:
    """A phase opening or closing; `key` is stable across restarts and date changes."""

    at: datetime
    order: int
    phase_id: str
    edge: Edge

    detail: int = 0  # reminders: seconds before the end; digests: their number

    @property
    def key(self) -> str:
        if self.edge in (Edge.REMIND, Edge.DIGEST):
            return f"{self.phase_id}:{self.edge}:{self.detail}"
        return f"{self.phase_id}:{self.edge}"


class Timeline:
    """Pure view of a consultation's phases against a clock value (never cached)."""

    def __init__(self, consultation: Consultation) -> None:
        self.consultation = consultation

    def current(self, now: datetime) -> Phase | None:
        """The phase open at `now` (start inclusive, end inclusive to the minute given)."""
        for phase in self.consultation.phases:
            if phase.starts <= now <= phase.ends:
                return phase
        return None

    def is_open(self, kind: PhaseKind, now: datetime) -> bool:
        phase = self.current(now)
        return phase is not None and phase.kind == kind

    def has_started(self, kind: PhaseKind, now: datetime) -> bool:
        phase = self.consultation.phase(kind)
        return phase is not None and phase.starts <= now

    def next(self, now: datetime) -> Phase | None:
        return next((p for p in self.consultation.phases if p.starts > now), None)

    def transitions(self) -> list[Transition]:
        """Every opening and closing, in time order (opening before closing on a tie)."""
        out: list[Transition] = []
        for i, phase in enumerate(self.consultation.phases):
            out.append(Transition(phase.starts, 2 * i, phase.id, Edge.OPEN))
            out.append(Transition(phase.ends, 2 * i + 1, phase.id, Edge.CLOSE))
        return sorted(out)

    def events(self) -> list[Transition]:
        """Transitions, reminders and the kinds' own events (e.g. digests), in time order: what
        the phase engine acts on."""
        out = self.transitions()
        for i, phase in enumerate(self.consultation.phases):
            for reminder in phase.reminders:
                seconds = int(reminder.total_seconds())
                out.append(Transition(phase.ends - reminder, 2 * i, phase.id, Edge.REMIND, seconds))
            out.extend(phase_type(phase.kind).events(phase, 2 * i))
        return sorted(out)

    def due(self, now: datetime) -> list[Transition]:
        return [t for t in self.events() if t.at <= now]
