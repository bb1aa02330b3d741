"""The timeline: current phase, transitions, time zones."""

from __future__ import annotations

import itertools
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import yaml

from bot.consultation import (
    MAX_LABEL_CHARS,
    ConsultationError,
    PhaseKind,
    load_consultation,
    parse_consultation,
)
from bot.phases.kinds import PHASE_TYPES, IdeasPhase, phase_type
from bot.phases.timeline import Edge, Timeline
from tests.support import DEFAULT_CONSULTATION, default_document


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
    doc = default_document()
    doc["phases"][0]["ends"] = "2020-05-16 23:59:30"
    doc["phases"][1]["ends"] = "2020-05-18T23:59:00+02:00"
    c = parse_consultation(yaml.safe_dump(doc, allow_unicode=True))
    assert c.phases[0].ends == brussels("2020-05-16 23:59:30")
    assert c.phases[1].ends == brussels("2020-05-18 23:59:00")


# ---------------------------------------------------------------- phase kinds


def test_every_phase_kind_is_registered_once() -> None:
    assert list(PHASE_TYPES) == list(PhaseKind)
    for kind, registered in PHASE_TYPES.items():
        assert registered.kind == kind
        assert phase_type(str(kind)) is registered
        assert registered.rehearsal_length > timedelta(0)
    # A key belongs to one kind: a phase of another kind is told whose it is.
    keys = [key for registered in PHASE_TYPES.values() for key in registered.keys]
    assert len(keys) == len(set(keys))


def test_only_ideas_phases_add_digests_to_the_timeline() -> None:
    c = load_consultation(DEFAULT_CONSULTATION)
    digests = [e for e in Timeline(c).events() if e.edge == Edge.DIGEST]
    assert {e.phase_id for e in digests} == {"ideas"}
    ideas = c.phase(PhaseKind.IDEAS)
    assert ideas is not None and digests == IdeasPhase().events(ideas, 4)
    assert digests[-1].at == ideas.ends and digests[0].at == ideas.starts + ideas.digest


def located_problems(document: dict[str, Any]) -> list[tuple[str, str]]:
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    with pytest.raises(ConsultationError) as caught:
        parse_consultation(text, "kinds.yaml")
    return [(p.path, p.message) for p in caught.value.problems]


def project(project_id: str) -> dict[str, Any]:
    return {"id": project_id, "title": {"fr": "Projet", "nl": "Project", "en": "Project"}}


def test_a_survey_phase_refuses_the_other_kinds_keys() -> None:
    doc = default_document()
    doc["phases"][0].update(audience=["official"], projects=[project("x")], digest="0m")
    assert located_problems(doc) == [
        ("phases[survey].audience", "audience is for results phases"),
        ("phases[survey].projects", "projects are for ideas phases"),
        ("phases[survey].digest", "digest is for ideas phases"),
        ("phases[survey].digest", "must be a positive duration"),
    ]


def test_a_results_phase_needs_an_audience_and_refuses_the_other_kinds_keys() -> None:
    doc = default_document()
    del doc["phases"][1]["audience"]
    doc["phases"][1].update(reminders=["1h"], projects=[project("x")], digest="1d")
    assert located_problems(doc) == [
        ("phases[results].reminders", "reminders are for survey phases"),
        (
            "phases[results].audience",
            "say who receives the results, e.g. [official, ambassador]",
        ),
        ("phases[results].projects", "projects are for ideas phases"),
        ("phases[results].digest", "digest is for ideas phases"),
    ]


def test_an_ideas_phase_needs_projects_and_refuses_the_other_kinds_keys() -> None:
    doc = default_document()
    doc["phases"][2].update(projects=[], reminders=["1h"], audience=["official"])
    assert located_problems(doc) == [
        ("phases[ideas].reminders", "reminders are for survey phases"),
        ("phases[ideas].audience", "audience is for results phases"),
        ("phases[ideas].projects", "an ideas phase needs at least one project"),
    ]


def test_an_ideas_phase_checks_its_projects() -> None:
    doc = default_document()
    doc["phases"][2]["projects"] = [
        project("Bad-Id"),
        project("twice"),
        project("twice"),
    ]
    doc["phases"][2]["projects"][0]["title"]["en"] = "x" * (MAX_LABEL_CHARS + 1)
    del doc["phases"][2]["projects"][1]["title"]["nl"]
    assert located_problems(doc) == [
        (
            "phases[ideas].projects[Bad-Id].id",
            "project id 'Bad-Id': use lowercase letters, digits and _ (at most 24)",
        ),
        ("phases[ideas].projects[twice].id", "duplicate project id 'twice'"),
        (
            "phases[ideas].projects[Bad-Id].title.en",
            f"too long for a button ({MAX_LABEL_CHARS + 1} characters, at most {MAX_LABEL_CHARS})",
        ),
        (
            "phases[ideas].projects[twice].title.nl",
            "missing nl text (every language of `languages` is needed)",
        ),
    ]


def test_a_survey_needs_questions_and_one_phase_per_kind() -> None:
    doc = default_document()
    doc["questions"] = []
    assert located_problems(doc) == [("questions", "a survey phase needs at least one question")]
    doc = default_document()
    doc["phases"][1]["kind"] = "survey"
    assert located_problems(doc) == [
        ("phases[results].kind", "there is already a survey phase"),
        ("phases[results].audience", "audience is for results phases"),
        ("phases[results].commentary", "commentary is for results phases"),
    ]
    # Without a survey phase, no question is needed.
    doc = default_document()
    doc["phases"] = doc["phases"][1:]
    doc["questions"] = []
    assert [p.kind for p in parse_consultation(yaml.safe_dump(doc)).phases] == [
        PhaseKind.RESULTS,
        PhaseKind.IDEAS,
    ]


def test_file_clock_moves_only_when_reloaded(tmp_path: Path) -> None:
    from bot.context import FileClock

    path = tmp_path / "clock"
    clock = FileClock(path)  # no file yet: the wall clock
    assert abs((clock() - datetime.now(UTC)).total_seconds()) < 60
    path.write_text("86400")
    assert abs((clock() - datetime.now(UTC)).total_seconds()) < 60  # not re-read per call
    clock.reload()
    assert abs((clock() - datetime.now(UTC)).total_seconds() - 86400) < 60
