"""The default consultation and its results read closely against the seed
(../shared/seed/deconfinement-befus.txt): who is asked the strategy axes, a yes/no scale kept in
its order, "several answers possible", whose answers a follow-up counts, and French no-break
spaces so that a "?" never stands alone on a line."""

from __future__ import annotations

import textwrap
from typing import Any

import pytest
import yaml

from bot.consultation import ConsultationError, parse_consultation
from bot.i18n import Translator, typeset
from bot.results.charts import chart_text
from bot.results.tally import Results, rank, summary_parts
from storage.repositories.tallies import Tally
from tests.support import default_document
from tests.test_results import C, seed_results

TR = Translator()
NBSP = "\xa0"


def parsed(document: dict[str, Any]) -> Any:
    return parse_consultation(yaml.safe_dump(document, allow_unicode=True, sort_keys=False))


def block(results: Results, question_id: str, lang: str, consultation: Any = C) -> str:
    """The summary's block of one question."""
    text = "\n".join(summary_parts(results, consultation, lang, TR))
    q = consultation.question(question_id)
    start = typeset(consultation.text(q.text, lang), lang)[:30]
    return next(b for b in text.split("\n\n") if start in b.splitlines()[0])


# ---------------------------------------------------------------- 1. who is asked what


def test_strategy_axes_are_asked_of_those_who_find_a_strategy_useful() -> None:
    """The seed: "Si vous estimez utile de développer une stratégie locale…, sur quels axes en
    priorité ?" — a follow-up of the challenge "développement commun d'une stratégie", not a
    question for all; the per-theme questions stay for all (the seed's nuisance counts, 7 and
    6, come from more people than the 1 who chose nuisances as a challenge)."""
    axes = C.question("strategy_axes")
    assert axes is not None and axes.when is not None
    assert (axes.when.question, axes.when.any) == ("challenges", ["strategy"])
    for question_id in ("inclusion", "living_together", "nuisances", "rehab_priority"):
        q = C.question(question_id)
        assert q is not None and q.when is None, question_id


# ---------------------------------------------------------------- 3. the order of a scale


def counts(**chosen: int) -> dict[tuple[str, str], int]:
    return {tuple(key.split("__")): n for key, n in chosen.items()}  # type: ignore[misc]


def test_a_yes_no_question_keeps_the_files_order_whatever_the_counts() -> None:
    """`ordered: true` (a scale): Oui, Non in the file's order even when Non leads; a
    single-choice question without it (victims or offenders: a priority) is ranked by count."""
    tally = Tally(
        10,
        {"rehab_priority": 10, "rehab_focus": 3},
        counts(
            rehab_priority__yes=3,
            rehab_priority__no=7,
            rehab_focus__victims=1,
            rehab_focus__authors=2,
        ),
    )
    by_id = {qr.question.id: qr for qr in rank(C, tally).questions}
    assert [(r.option_id, r.count) for r in by_id["rehab_priority"].options] == [
        ("yes", 3),
        ("no", 7),
    ]
    assert [r.option_id for r in by_id["rehab_focus"].options] == ["authors", "victims"]
    text = block(rank(C, tally), "rehab_priority", "fr")
    assert text.index("Oui, c’est une priorité locale — 3") < text.index("Non, ce n’est pas")


def test_a_three_point_scale_reads_oui_non_je_ne_sais_pas() -> None:
    """The same rule for a yes / no / don't know question, in every language, summary and chart."""
    document = default_document()
    priority = next(q for q in document["questions"] if q["id"] == "rehab_priority")
    priority["options"].append(
        {
            "id": "dont_know",
            "label": {"fr": "Je ne sais pas", "nl": "Ik weet het niet", "en": "I don’t know"},
        }
    )
    c = parsed(document)
    tally = Tally(
        10,
        {"rehab_priority": 10},
        counts(rehab_priority__yes=2, rehab_priority__no=3, rehab_priority__dont_know=5),
    )
    results = rank(c, tally)
    qr = next(q for q in results.questions if q.question.id == "rehab_priority")
    assert [r.option_id for r in qr.options] == ["yes", "no", "dont_know"]
    for lang, labels in {
        "fr": ["Oui", "Non", "Je ne sais pas"],
        "nl": ["Ja", "Nee", "Ik weet het niet"],
        "en": ["Yes", "No", "I don’t know"],
    }.items():
        assert chart_text(qr, 6, c, lang, TR).labels == labels
        text = block(results, "rehab_priority", lang, c)
        bullets = [line for line in text.splitlines() if line.startswith("• ")]
        sign = f"{NBSP}%" if lang == "fr" else "%"
        assert [b.split(" — ")[1] for b in bullets] == [
            f"2 (20{sign})",
            f"3 (30{sign})",
            f"5 (50{sign})",
        ]


def test_ordered_needs_options() -> None:
    document = default_document()
    document["questions"].append(
        {"id": "notes", "kind": "text", "text": {"fr": "?", "nl": "?", "en": "?"}, "ordered": True}
    )
    with pytest.raises(ConsultationError) as caught:
        parsed(document)
    assert "questions[notes].ordered: only a question with options" in str(caught.value)


# ---------------------------------------------------------------- 3. several answers possible


def test_several_answers_possible_under_multi_choice_questions_only() -> None:
    results = seed_results()
    for lang, note in {
        "fr": "Plusieurs réponses possibles",
        "nl": "Meerdere antwoorden mogelijk",
        "en": "Several answers possible",
    }.items():
        for qr in results.questions:
            multi = qr.question.kind == "multi"
            assert (f"<i>{note}</i>" in block(results, qr.question.id, lang)) == multi
            assert chart_text(qr, 1, C, lang, TR).footer == ([note] if multi else [])


# ---------------------------------------------------------------- 3. whose answers


def test_a_follow_up_says_whose_answers_it_counts() -> None:
    """Numbered as readers see the results: rehab_priority is question 6, challenges 1."""
    results = seed_results()
    by_id = {qr.question.id: qr for qr in results.questions}
    expected = {
        "fr": (
            f"Parmi celles et ceux qui ont répondu «{NBSP}Oui{NBSP}» à la question 6",
            f"Parmi celles et ceux qui ont répondu «{NBSP}Stratégie locale commune{NBSP}» "
            "à la question 1",
            "(4 personnes concernées)",
        ),
        "nl": (
            "Onder wie ‘Ja’ antwoordde op vraag 6",
            "Onder wie ‘Gezamenlijke lokale strategie’ antwoordde op vraag 1",
            "(4 betrokken personen)",
        ),
        "en": (
            "Among those who answered “Yes” to question 6",
            "Among those who answered “Joint local strategy” to question 1",
            "(4 people concerned)",
        ),
    }
    for lang, (focus, axes, concerned) in expected.items():
        assert f"<i>{focus} {concerned}</i>" in block(results, "rehab_focus", lang)
        assert axes in block(results, "strategy_axes", lang).replace("\n", " ")
        notes = " ".join(chart_text(by_id["rehab_focus"], 7, C, lang, TR).notes)
        assert focus in notes
        assert axes in " ".join(chart_text(by_id["strategy_axes"], 2, C, lang, TR).notes)
        # Questions asked of everyone say nothing of the kind.
        assert "6" not in " ".join(chart_text(by_id["inclusion"], 3, C, lang, TR).notes[1:])


def test_follow_up_numbers_are_those_of_the_results_not_of_the_file() -> None:
    """A free-text question before rehab_priority is not in the results: the follow-up still
    refers to question 6, as the charts and the summary number it."""
    document = default_document()
    note = {"id": "remark", "kind": "text", "text": {"fr": "Une remarque ?", "nl": "?", "en": "?"}}
    document["questions"].insert(0, {**note, "min": 0})
    c = parsed(document)
    results = rank(c, Tally(4, {"rehab_focus": 4, "rehab_priority": 4}, {}))
    assert [qr.question.id for qr in results.questions][5] == "rehab_priority"
    assert "à la question 6" in block(results, "rehab_focus", "fr", c)


def test_several_answers_that_open_a_follow_up_are_listed() -> None:
    document = default_document()
    focus = next(q for q in document["questions"] if q["id"] == "strategy_axes")
    focus["when"] = {"question": "challenges", "any": ["inclusion", "living_together", "strategy"]}
    c = parsed(document)
    qr = next(q for q in rank(c, Tally(0, {}, {})).questions if q.question.id == "strategy_axes")
    assert " ".join(chart_text(qr, 2, c, "en", TR).notes[1:]) == (
        "Among those who answered “Inclusion of people”, “Living together safely” or “Joint "
        "local strategy” to question 1"
    )


# ---------------------------------------------------------------- 3. French typography


def test_typeset_french_spaces_and_nothing_else() -> None:
    assert typeset("Oui ? « Non » : a ; b !", "fr") == (
        f"Oui{NBSP}? «{NBSP}Non{NBSP}»{NBSP}: a{NBSP}; b{NBSP}!"
    )
    # Only spaces already written change: times, links and other languages stay as they are.
    assert typeset("à 14:00, https://t.me/x?start=1", "fr") == "à 14:00, https://t.me/x?start=1"
    assert typeset("Is it ? « yes »", "en") == "Is it ? « yes »"


def question_mark_alone(width: int = 48) -> str:
    """A French question whose plain wrapping at `width` leaves the "?" alone on a line."""
    for n in range(30, 90):
        text = f"2. {'mot ' * (n // 4)}{'x' * (n % 4 + 1)} ?"
        if "?" in textwrap.wrap(text, width):
            return text[3:]
    raise AssertionError("no such text")


def test_a_question_mark_never_stands_alone_on_a_chart_title_line() -> None:
    document = default_document()
    text = question_mark_alone()
    assert "?" in textwrap.wrap(f"2. {text}", 48)  # what plain spaces did
    axes = next(q for q in document["questions"] if q["id"] == "strategy_axes")
    axes["text"]["fr"] = text
    c = parsed(document)
    qr = next(q for q in rank(c, Tally(0, {}, {})).questions if q.question.id == "strategy_axes")
    title = chart_text(qr, 2, c, "fr", TR).title
    assert title[-1].endswith(f"{NBSP}?") and len(title[-1]) > 2, title
    assert all(not line.startswith(("?", ":", ";", "!", "»")) for line in title)
    # The summary, the heading and the follow-ups' lines too.
    summary = "\n".join(summary_parts(seed_results(), C, "fr", TR))
    assert " ?" not in summary and " :" not in summary and "« " not in summary
    assert f"locale{NBSP}?" in summary and f"Résultats{NBSP}:" in summary
    # Dutch and English keep their own typography.
    assert NBSP not in "\n".join(summary_parts(seed_results(), C, "en", TR)).replace("\xa0%", "")
