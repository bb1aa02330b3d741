"""Copies of the consultation on another timeline: shifted (playground) and compressed (rehearse)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest

from bot.consultation import PhaseKind
from bot.phases.kinds import phase_type
from bot.phases.rehearsal import (
    AFTER,
    OPENING_MARGIN,
    compressed,
    parse_durations,
    parse_start,
    read_document,
    shifted,
    write_copy,
)
from bot.phases.timeline import Timeline
from tests.support import DEFAULT_CONSULTATION

# December: Brussels is at UTC+1, while the file's May dates are at UTC+2.
NOW = datetime(2026, 12, 4, 8, 30, tzinfo=UTC)


@pytest.mark.parametrize("phase", ["survey", "results", "ideas"])
def test_shifted_opens_the_chosen_phase_now_and_keeps_the_durations(
    phase: str, tmp_path: Path
) -> None:
    document, original = read_document(DEFAULT_CONSULTATION)
    copy = write_copy(tmp_path / "c.yaml", shifted(document, original, phase, NOW))
    timeline = Timeline(copy)
    current = timeline.current(NOW)
    assert current is not None and current.id == phase
    assert current.starts == NOW - OPENING_MARGIN  # to the second, summer time or not
    for before, after in zip(original.phases, copy.phases, strict=True):
        assert after.ends - after.starts == before.ends - before.starts
    # Earlier phases are over, later ones to come: their transitions follow in time order.
    index = [p.id for p in copy.phases].index(phase)
    assert all(p.ends < NOW for p in copy.phases[:index])
    assert all(p.starts > NOW for p in copy.phases[index + 1 :])
    assert copy.questions == original.questions and copy.id == original.id


def test_shifted_after_the_end(tmp_path: Path) -> None:
    document, original = read_document(DEFAULT_CONSULTATION)
    copy = write_copy(tmp_path / "c.yaml", shifted(document, original, AFTER, NOW))
    assert Timeline(copy).current(NOW) is None
    assert copy.phases[-1].ends == NOW - timedelta(minutes=1)
    with pytest.raises(ValueError, match="no phase"):
        shifted(document, original, "nope", NOW)


def test_compressed_back_to_back_with_scaled_reminders_and_digest(tmp_path: Path) -> None:
    document, original = read_document(DEFAULT_CONSULTATION)
    durations = parse_durations("10m", "5m", "30m")
    copy = write_copy(tmp_path / "c.yaml", compressed(document, original, durations, NOW))
    survey, results, ideas = copy.phases
    assert (survey.starts, survey.ends) == (NOW, NOW + timedelta(minutes=10))
    assert (results.starts, results.ends) == (survey.ends, survey.ends + timedelta(minutes=5))
    assert ideas.ends - ideas.starts == timedelta(minutes=30)
    # 48 h before the end of a 13-day survey -> about 1.5 minutes before the end of ten.
    assert survey.reminders == [timedelta(minutes=2)]
    assert ideas.digest == timedelta(minutes=5)  # never closer than five minutes
    events = Timeline(copy).events()
    assert events[0].at == NOW and events[-1].at == ideas.ends
    assert all(NOW <= e.at <= ideas.ends for e in events)


def test_each_kind_has_its_rehearsal_length(tmp_path: Path) -> None:
    document, original = read_document(DEFAULT_CONSULTATION)
    copy = write_copy(tmp_path / "c.yaml", compressed(document, original, {}, NOW))
    assert [p.ends - p.starts for p in copy.phases] == [
        phase_type(p.kind).rehearsal_length for p in original.phases
    ]


def test_a_reminder_longer_than_a_tiny_phase_is_left_out(tmp_path: Path) -> None:
    document, original = read_document(DEFAULT_CONSULTATION)
    durations = parse_durations("1m", "1m", "1m")
    copy = write_copy(tmp_path / "c.yaml", compressed(document, original, durations, NOW))
    assert copy.phases[0].reminders == []


def test_durations_and_start_parsing() -> None:
    assert parse_durations("1h", "5m", "2d")[PhaseKind.IDEAS] == timedelta(days=2)
    # In the registry's order; a kind left out keeps its rehearsal length.
    assert parse_durations("1h") == {PhaseKind.SURVEY: timedelta(hours=1)}
    with pytest.raises(ValueError, match="one per phase kind"):
        parse_durations("1h", "5m", "2d", "1m")
    with pytest.raises(ValueError, match="not a duration"):
        parse_durations("10 minutes", "5m", "30m")
    tz = read_document(DEFAULT_CONSULTATION)[1].tz
    assert parse_start("now", NOW, tz) == NOW
    assert parse_start("+15m", NOW, tz) == NOW + timedelta(minutes=15)
    assert parse_start("2026-12-04 14:00", NOW, tz) == datetime(2026, 12, 4, 13, 0, tzinfo=UTC)
    with pytest.raises(ValueError, match="--start"):
        parse_start("tomorrow", NOW, tz)


def test_command_line_problems_are_one_line(tmp_path: Path) -> None:
    from tests.test_cli import TOKEN, assert_clean_failure, consultbot

    consultation = str(DEFAULT_CONSULTATION)
    assert_clean_failure(
        consultbot(["rehearse"], tmp_path, CONSULTATION_FILE=consultation), "BOT_TOKEN is not set"
    )
    assert_clean_failure(
        consultbot(
            ["rehearse", "--survey", "10 minutes"],
            tmp_path,
            BOT_TOKEN=TOKEN,
            CONSULTATION_FILE=consultation,
        ),
        "not a duration",
    )
    assert_clean_failure(
        consultbot(["playground", "--phase", "vote"], tmp_path, CONSULTATION_FILE=consultation),
        "--phase must be one of survey, results, ideas, after",
    )
    assert not (tmp_path / "data").exists()  # nothing written before the input is right
