"""Loading and validating consultation files."""

from __future__ import annotations

from datetime import datetime, timedelta
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
    parse_duration,
)
from consultbot.cli import main
from tests.support import DEFAULT_CONSULTATION, default_document


def problems_of(document: dict[str, Any]) -> list[str]:
    text = yaml.safe_dump(document, allow_unicode=True, sort_keys=False)
    with pytest.raises(ConsultationError) as caught:
        parse_consultation(text, "broken.yaml")
    return [p.render("broken.yaml") for p in caught.value.problems]


def test_default_consultation_is_the_seed() -> None:
    c = load_consultation(DEFAULT_CONSULTATION)
    assert c.languages == ["fr", "nl", "en"]
    assert [c.text(c.organizer, lang) for lang in c.languages] == [
        "BeFUS asbl",
        "BeFUS vzw",
        "BeFUS",
    ]
    assert c.text(c.title, "fr") == "Pour un déconfinement sécure au niveau local"
    assert [p.kind for p in c.phases] == [PhaseKind.SURVEY, PhaseKind.RESULTS, PhaseKind.IDEAS]
    survey = c.phases[0]
    # Naive dates are read in Europe/Brussels (CEST in May: UTC+2).
    assert survey.starts.isoformat() == "2020-05-04T00:00:00+02:00"
    assert survey.ends.utcoffset() == timedelta(hours=2)
    assert c.phases[2].ends.date().isoformat() == "2021-03-31"
    assert survey.reminders == [timedelta(hours=48)]
    ids = [q.id for q in c.questions]
    assert ids[0] == "challenges"
    assert {"strategy_axes", "inclusion", "living_together", "nuisances"} <= set(ids)
    focus = c.question("rehab_focus")
    assert focus is not None and focus.when is not None
    # The seed asks which comes first, victims or authors (3 against 1): one answer.
    assert focus.kind == "single"
    hint = ("plusieurs choix", "meerdere antwoorden", "choose several", "((", "))")
    for q in c.questions:
        for lang in c.languages:
            assert not any(h in c.text(q.text, lang) for h in hint), (q.id, lang)
    assert focus.when.question == "rehab_priority" and focus.when.any == ["yes"]
    assert [p.id for p in c.phases[2].projects] == [
        "inclusion",
        "living_together",
        "nuisances",
        "rehabilitation",
        "strategy",
    ]
    for q in c.questions:
        for o in q.options:
            assert all(len(label) <= MAX_LABEL_CHARS for label in o.label.values())


def test_organizer_may_be_one_name_or_a_text_per_language() -> None:
    doc = default_document()
    doc["organizer"] = "Ville de Namur"
    c = parse_consultation(yaml.safe_dump(doc, allow_unicode=True))
    assert c.text(c.organizer, "nl") == "Ville de Namur"
    doc["organizer"] = {"fr": "Ville de Namur", "nl": "Stad Namen"}
    assert any("organizer.en: missing en text" in p for p in problems_of(doc))


def test_seed_options_named_in_phase_two_are_all_there() -> None:
    c = load_consultation(DEFAULT_CONSULTATION)
    expected = {
        "challenges": 5,
        "strategy_axes": 5,
        "inclusion": 7,
        "living_together": 4,
        "nuisances": 5,
        "rehab_priority": 2,
        "rehab_focus": 2,
    }
    assert {q.id: len(q.options) for q in c.questions} == expected


def test_unknown_key_and_missing_translation_are_located() -> None:
    doc = default_document()
    doc["phases"][0]["startz"] = "2020-05-04 00:00"
    problems = problems_of(doc)
    assert any("phases[survey].startz: unknown key" in p for p in problems), problems
    doc = default_document()
    del doc["questions"][1]["options"][2]["label"]["nl"]
    problems = problems_of(doc)
    assert len(problems) == 1
    assert (
        "questions[strategy_axes].options[professionals].label.nl: missing nl text" in problems[0]
    )
    # The line number points into the file.
    assert problems[0].startswith("broken.yaml:")


def test_every_problem_is_reported_at_once() -> None:
    doc = default_document()
    doc["questions"][2]["options"][1]["id"] = doc["questions"][2]["options"][0]["id"]
    doc["phases"][1]["starts"] = "2020-05-10 00:00"  # overlaps the survey
    doc["questions"][-1]["when"] = {"question": "nowhere", "any": ["yes"]}
    doc["questions"][0]["min"] = 4
    doc["questions"][0]["max"] = 2
    doc["questions"][0]["options"][0]["label"]["en"] = "x" * (MAX_LABEL_CHARS + 1)
    problems = "\n".join(problems_of(doc))
    assert "duplicate option id 'participation'" in problems
    assert "phases[results].starts: starts before phase 'survey' ends" in problems
    assert "questions[rehab_focus].when.question: unknown question 'nowhere'" in problems
    assert "min 4 is greater than max 2" in problems
    assert "too long for a button" in problems


def test_condition_on_unknown_option_and_unordered_phases() -> None:
    doc = default_document()
    doc["questions"][-1]["when"] = {"question": "rehab_priority", "any": ["maybe"]}
    doc["phases"][0]["ends"] = "2020-05-01 00:00"
    problems = "\n".join(problems_of(doc))
    assert "question 'rehab_priority' has no option 'maybe'" in problems
    assert "phases[survey].ends: ends before it starts" in problems


def test_bad_values_are_explained() -> None:
    doc = default_document()
    doc["phases"][0]["reminders"] = ["two days"]
    doc["questions"][0]["kind"] = "several"
    doc["timezone"] = "Europe/Bruxelles"
    problems = "\n".join(problems_of(doc))
    assert "not a duration: 'two days'" in problems
    assert "questions[challenges].kind" in problems
    doc = default_document()
    doc["timezone"] = "Europe/Bruxelles"
    assert "unknown time zone 'Europe/Bruxelles'" in "\n".join(problems_of(doc))


def test_yaml_syntax_error_has_a_line() -> None:
    with pytest.raises(ConsultationError) as caught:
        parse_consultation("id: x\ntitle: [unclosed\n", "bad.yaml")
    assert caught.value.problems[0].line is not None
    assert "not valid YAML" in str(caught.value)


def test_aware_dates_are_kept_and_durations_parse() -> None:
    doc = default_document()
    doc["phases"][0]["starts"] = "2020-05-04T00:00:00+00:00"
    c = parse_consultation(yaml.safe_dump(doc, allow_unicode=True))
    assert c.phases[0].starts == datetime.fromisoformat("2020-05-04T00:00:00+00:00")
    assert parse_duration("7d") == timedelta(days=7)
    assert parse_duration("30m") == timedelta(minutes=30)
    with pytest.raises(ValueError):
        parse_duration("7 days")


def test_check_command(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["check", str(DEFAULT_CONSULTATION)]) == 0
    assert "OK" in capsys.readouterr().out
    broken = tmp_path / "broken.yaml"
    doc = default_document()
    doc["questions"][0]["options"][0]["labl"] = doc["questions"][0]["options"][0].pop("label")
    broken.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["check", str(broken)]) == 1
    out = capsys.readouterr().out
    assert "questions[challenges].options[inclusion].labl: unknown key" in out
    assert "questions[challenges].options[inclusion].label: missing" in out


def test_local_times_that_dst_skips_are_rejected_ambiguous_ones_named(
    tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    # Europe/Brussels: 2020-03-29 02:00 -> 03:00 (skipped), 2020-10-25 03:00 -> 02:00 (twice).
    doc = default_document()
    doc["phases"][0]["starts"] = "2020-03-29 02:30"
    problems = problems_of(doc)
    assert any(
        "phases[survey].starts: 2020-03-29 02:30 does not exist in Europe/Brussels" in p
        for p in problems
    ), problems
    skipped = tmp_path / "skipped.yaml"
    skipped.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["check", str(skipped)]) == 1
    assert "does not exist" in capsys.readouterr().out

    doc = default_document()
    doc["phases"][2]["starts"] = "2020-10-25 02:30"
    ambiguous = tmp_path / "ambiguous.yaml"
    ambiguous.write_text(yaml.safe_dump(doc, allow_unicode=True, sort_keys=False), encoding="utf-8")
    assert main(["check", str(ambiguous)]) == 0
    out = capsys.readouterr().out
    assert "warning" in out and "phases[ideas].starts" in out
    assert "2020-10-25 02:30 happens twice in Europe/Brussels" in out
    assert "OK" in out
    # Read as the first of the two (summer time), as documented in the warning.
    c = load_consultation(ambiguous)
    assert c.phases[2].starts.utcoffset() == timedelta(hours=2)
