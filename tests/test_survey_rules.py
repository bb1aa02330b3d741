"""Survey rules: conditional questions, answer bounds, where to resume."""

from __future__ import annotations

import pytest

from bot.consultation import load_consultation
from bot.survey.service import (
    AnswerProblem,
    check_answer,
    first_unanswered,
    hidden_answered,
    visible_questions,
)
from storage.repositories.survey import StoredAnswer
from tests.support import DEFAULT_CONSULTATION

C = load_consultation(DEFAULT_CONSULTATION)


def ids(answers: dict[str, StoredAnswer]) -> list[str]:
    return [q.id for q in visible_questions(C, answers)]


def test_follow_up_only_when_its_condition_holds() -> None:
    assert "rehab_focus" not in ids({})
    assert "rehab_focus" not in ids({"rehab_priority": StoredAnswer(("no",))})
    assert ids({"rehab_priority": StoredAnswer(("yes",))})[-1] == "rehab_focus"


def test_answers_of_hidden_questions_are_dropped() -> None:
    answers = {
        "rehab_priority": StoredAnswer(("no",)),
        "rehab_focus": StoredAnswer(("victims",)),
    }
    assert hidden_answered(C, answers) == ["rehab_focus"]
    answers["rehab_priority"] = StoredAnswer(("yes",))
    assert hidden_answered(C, answers) == []


def test_resume_at_first_unanswered_question() -> None:
    assert first_unanswered(C, {}) == 0
    answers = {
        "challenges": StoredAnswer(("inclusion", "strategy")),
        "strategy_axes": StoredAnswer(("communication",)),
    }
    assert first_unanswered(C, answers) == 2
    # Without the joint strategy among the challenges, its axes are not asked.
    answers["challenges"] = StoredAnswer(("inclusion",))
    assert first_unanswered(C, answers) == 1
    everything = {
        q.id: StoredAnswer((q.options[0].id,)) for q in C.questions if q.id != "rehab_focus"
    }
    everything["rehab_priority"] = StoredAnswer(("no",))
    assert first_unanswered(C, everything) is None
    everything["rehab_priority"] = StoredAnswer(("yes",))
    assert first_unanswered(C, everything) == len(ids(everything)) - 1


@pytest.mark.parametrize(
    ("question", "choices", "problem"),
    [
        ("challenges", [], AnswerProblem.TOO_FEW),
        ("challenges", ["inclusion", "strategy"], None),
        ("challenges", ["forged"], AnswerProblem.UNKNOWN_OPTION),
        ("rehab_priority", [], AnswerProblem.TOO_FEW),
        ("rehab_priority", ["yes", "no"], AnswerProblem.TOO_MANY),
        ("rehab_priority", ["no"], None),
    ],
)
def test_answer_bounds(question: str, choices: list[str], problem: AnswerProblem | None) -> None:
    q = C.question(question)
    assert q is not None
    assert check_answer(q, choices, None) == problem


def test_text_answers() -> None:
    q = C.question("challenges").model_copy(update={"kind": "text", "options": [], "min": 1})
    assert check_answer(q, [], "  ") == AnswerProblem.EMPTY_TEXT
    assert check_answer(q, [], "x" * (q.max_length + 1)) == AnswerProblem.TEXT_TOO_LONG
    assert check_answer(q, [], "Plus de bancs publics") is None
