"""Copies of a consultation on another timeline: compressed for a rehearsal on real Telegram,
or shifted so that a chosen phase opens now (the playground's timeline control).

Both work on the file's document (a dict) so that the copy is an ordinary consultation file,
run by the ordinary `consultbot run`: the scheduler needs no special mode.
"""

from __future__ import annotations

from collections.abc import Mapping
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import yaml

from bot.consultation import (
    Consultation,
    PhaseKind,
    parse_consultation,
    parse_duration,
    with_absolute_files,
)
from bot.phases.kinds import PHASE_TYPES, phase_type

AFTER = "after"  # a pseudo-phase: every phase is over
# A phase "opens now" a little in the past, so it is open when the bot starts.
OPENING_MARGIN = timedelta(seconds=5)


def read_document(path: Path) -> tuple[dict[str, Any], Consultation]:
    text = path.read_text(encoding="utf-8")
    # The copy is written elsewhere: a relative communes file is named from here.
    document = with_absolute_files(yaml.safe_load(text), path.parent)
    return document, parse_consultation(text, str(path))


def dump_document(document: Mapping[str, Any]) -> str:
    return yaml.safe_dump(dict(document), allow_unicode=True, sort_keys=False, width=100)


def _copy(document: Mapping[str, Any]) -> dict[str, Any]:
    return yaml.safe_load(dump_document(document))


def _local(moment: datetime, consultation: Consultation) -> str:
    """An ISO date-time with its offset, in the consultation's zone (readable in the copy)."""
    # Microseconds kept when there are any: an end "23:59" is read as 23:59:59.999999.
    local = moment.astimezone(consultation.tz)
    return local.isoformat(timespec="microseconds" if local.microsecond else "seconds")


def _minutes(delta: timedelta) -> int:
    return max(1, round(delta.total_seconds() / 60))


def shifted(
    document: Mapping[str, Any], consultation: Consultation, phase_id: str, now: datetime
) -> dict[str, Any]:
    """Every phase moved by the same amount so that `phase_id` opens now (or, for AFTER, the
    last phase ended a minute ago). Durations and gaps are kept."""
    # In UTC: arithmetic on datetimes of one zone is wall-clock arithmetic, and summer time
    # would move the phases by an hour.
    phases = [(p, p.starts.astimezone(UTC), p.ends.astimezone(UTC)) for p in consultation.phases]
    if phase_id == AFTER:
        delta = now - timedelta(minutes=1) - phases[-1][2]
    else:
        starts = next((s for p, s, _ in phases if p.id == phase_id), None)
        if starts is None:
            raise ValueError(f"no phase {phase_id!r} in {consultation.id}")
        delta = now - OPENING_MARGIN - starts
    doc = _copy(document)
    for raw, (_phase, starts, ends) in zip(doc["phases"], phases, strict=True):
        raw["starts"] = _local(starts + delta, consultation)
        raw["ends"] = _local(ends + delta, consultation)
    return doc


def compressed(
    document: Mapping[str, Any],
    consultation: Consultation,
    durations: Mapping[PhaseKind, timedelta],
    start: datetime,
) -> dict[str, Any]:
    """Phases back to back from `start`, each lasting its kind's duration; reminders and the
    kinds' periods (the digest) scaled in proportion, so a rehearsal meets every event of the
    real run."""
    doc = _copy(document)
    at = start.astimezone(UTC)
    for raw, phase in zip(doc["phases"], consultation.phases, strict=True):
        kind = phase_type(phase.kind)
        length = durations.get(phase.kind, kind.rehearsal_length)
        ratio = length / (phase.ends - phase.starts)
        raw["starts"] = _local(at, consultation)
        raw["ends"] = _local(at + length, consultation)
        if phase.reminders:
            # In whole minutes; one that would fall before the opening is left out.
            minutes = [_minutes(r * ratio) for r in phase.reminders]
            raw["reminders"] = [f"{m}m" for m in minutes if timedelta(minutes=m) < length]
        for key, period in kind.rehearsal_keys(phase, ratio).items():
            raw[key] = f"{_minutes(period)}m"
        at += length
    return doc


def parse_durations(*lengths: str) -> dict[PhaseKind, timedelta]:
    """'10m', '5m', '30m' -> durations per phase kind, in the registry's order (the command
    line's --survey, --results, --ideas); a kind left out keeps its rehearsal length.
    ValueError with the wording to fix."""
    if len(lengths) > len(PHASE_TYPES):
        raise ValueError(f"at most {len(PHASE_TYPES)} durations, one per phase kind")
    out = {kind: parse_duration(length) for kind, length in zip(PHASE_TYPES, lengths, strict=False)}
    for kind, length in out.items():
        if length < timedelta(minutes=1):
            raise ValueError(f"--{kind} must last at least a minute")
    return out


def parse_start(value: str, now: datetime, tz: Any) -> datetime:
    """'now', '+15m' or an ISO date-time (naive: in the consultation's time zone)."""
    text = value.strip()
    if text == "now":
        return now
    if text.startswith("+"):
        return now + parse_duration(text[1:])
    try:
        moment = datetime.fromisoformat(text)
    except ValueError:
        raise ValueError(
            f"--start {value!r}: write now, +15m or a date and time such as 2026-12-04 14:00"
        ) from None
    return moment if moment.tzinfo else moment.replace(tzinfo=tz)


def phase_choices(consultation: Consultation) -> list[str]:
    return [p.id for p in consultation.phases] + [AFTER]


def write_copy(path: Path, document: Mapping[str, Any]) -> Consultation:
    """Write the copy and load it back: it must be a valid consultation like any other."""
    text = dump_document(document)
    consultation = parse_consultation(text, str(path))
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return consultation
