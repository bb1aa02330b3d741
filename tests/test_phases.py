"""The timeline: current phase, transitions, time zones."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta

from bot.consultation import PhaseKind, load_consultation
from bot.phases.timeline import Edge, Timeline
from tests.support import DEFAULT_CONSULTATION


def brussels(text: str) -> datetime:
    c = load_consultation(DEFAULT_CONSULTATION)
    return datetime.fromisoformat(text).replace(tzinfo=c.tz)


def test_current_phase_follows_the_seed_dates() -> None:
    timeline = Timeline(load_consultation(DEFAULT_CONSULTATION))
    assert timeline.current(brussels("2020-05-03 23:59")) is None
    assert timeline.current(brussels("2020-05-04 00:00")).kind == PhaseKind.SURVEY
    assert timeline.current(brussels("2020-05-16 23:59")).kind == PhaseKind.SURVEY
    # 16 May 23:59 Brussels is 21:59 UTC: an instant in UTC says the same.
    assert timeline.is_open(PhaseKind.SURVEY, datetime(2020, 5, 16, 21, 58, tzinfo=UTC))
    assert not timeline.is_open(PhaseKind.SURVEY, datetime(2020, 5, 16, 22, 0, tzinfo=UTC))
    assert timeline.current(brussels("2020-05-17 12:00")).kind == PhaseKind.RESULTS
    assert timeline.current(brussels("2020-12-01 12:00")).kind == PhaseKind.IDEAS
    assert timeline.current(brussels("2021-04-01 00:00")) is None
    assert timeline.next(brussels("2020-05-01 00:00")).id == "survey"
    assert timeline.has_started(PhaseKind.RESULTS, brussels("2020-05-17 00:00"))


def c_survey_end() -> datetime:
    return load_consultation(DEFAULT_CONSULTATION).phases[0].ends


def test_transitions_are_ordered_and_keyed() -> None:
    timeline = Timeline(load_consultation(DEFAULT_CONSULTATION))
    transitions = timeline.transitions()
    assert [t.key for t in transitions] == [
        "survey:open",
        "survey:close",
        "results:open",
        "results:close",
        "ideas:open",
        "ideas:close",
    ]
    assert all(a.at <= b.at for a, b in itertools.pairwise(transitions))
    due = timeline.due(brussels("2020-05-17 00:00"))
    assert [t.key for t in due] == [
        "survey:open",
        "survey:remind:172800",
        "survey:close",
        "results:open",
    ]
    reminder = due[1]
    assert reminder.at == c_survey_end() - timedelta(hours=48)
    assert due[-1].edge == Edge.OPEN


def test_winter_dates_use_winter_time() -> None:
    # The ideas phase ends on 31 March 2021, after the switch to summer time (28 March).
    c = load_consultation(DEFAULT_CONSULTATION)
    assert c.phases[2].starts.utcoffset() == timedelta(hours=2)
    assert c.phases[2].ends.utcoffset() == timedelta(hours=2)
    winter = datetime(2021, 1, 15, 12, 0, tzinfo=c.tz)
    assert winter.utcoffset() == timedelta(hours=1)
    assert Timeline(c).current(winter).kind == PhaseKind.IDEAS


def test_phase_end_is_inclusive_to_the_minute_shown() -> None:
    # "ends: 2020-05-16 23:59" is shown as "until 23:59": the whole of that minute is open.
    timeline = Timeline(load_consultation(DEFAULT_CONSULTATION))
    assert timeline.is_open(PhaseKind.SURVEY, brussels("2020-05-16 23:59:30"))
    assert timeline.is_open(PhaseKind.SURVEY, brussels("2020-05-16 23:59:59.999"))
    assert timeline.current(brussels("2020-05-17 00:00:00")).kind == PhaseKind.RESULTS
    close = next(t for t in timeline.transitions() if t.key == "survey:close")
    assert brussels("2020-05-16 23:59:59") < close.at < brussels("2020-05-17 00:00")


def test_explicit_seconds_or_offsets_are_taken_as_written() -> None:
    import yaml

    from bot.consultation import parse_consultation
    from tests.support import default_document

    doc = default_document()
    doc["phases"][0]["ends"] = "2020-05-16 23:59:30"
    doc["phases"][1]["ends"] = "2020-05-18T23:59:00+02:00"
    c = parse_consultation(yaml.safe_dump(doc, allow_unicode=True))
    assert c.phases[0].ends == brussels("2020-05-16 23:59:30")
    assert c.phases[1].ends == brussels("2020-05-18 23:59:00")
