"""Question kinds: one class per `kind:` of the consultation file, registered once.

Everything that differs between kinds lives in its class: what the file must say about such a
question, how many choices it takes, what a valid answer is and what is stored of it, how its
screen reads, how it is tallied and exported. A new kind is a subclass and one line in
`QUESTION_KINDS` (and its strings in the catalogs).

bot/consultation.py validates the file through this module: it imports nothing of aiogram nor
of the rest of bot/ (the screen is described as plain data), so that import makes no cycle.
"""

from __future__ import annotations

from abc import ABC, abstractmethod
from collections.abc import Iterator, Sequence
from enum import StrEnum
from html import escape
from typing import TYPE_CHECKING, ClassVar

from bot.text_budget import clip_html

if TYPE_CHECKING:  # types only: bot.consultation imports this module
    from bot.consultation import Consultation, Question
    from bot.i18n import Translator

Loc = tuple[str | int, ...]
Cell = str | int | None


class AnswerProblem(StrEnum):
    TOO_FEW = "too_few"
    TOO_MANY = "too_many"
    EMPTY_TEXT = "empty_text"
    TEXT_TOO_LONG = "text_too_long"
    UNKNOWN_OPTION = "unknown_option"


class QuestionKind(ABC):
    """What a kind of question is; the methods take the question they are asked about."""

    # The member answers with a typed message rather than buttons.
    takes_text: ClassVar[bool] = False
    # A tap on an option is the whole answer: stored, and the next question comes.
    answers_at_once: ClassVar[bool] = False
    # (chosen, not chosen) marks on the option buttons.
    marks: ClassVar[tuple[str, str]] = ("✅", "▫️")
    # Results count the answers per option; False: they are listed as free text (organisers).
    counted: ClassVar[bool] = True

    def problems(self, question: Question) -> Iterator[tuple[Loc, str]]:
        """What is wrong in the file's definition of the question, located within it."""
        yield from ()

    def min_choices(self, question: Question) -> int:
        return question.min or 0

    def max_choices(self, question: Question) -> int:
        return question.max or len(question.options)

    def check(
        self, question: Question, choices: Sequence[str], text: str | None
    ) -> AnswerProblem | None:
        """Why this answer cannot be stored, or None when it can."""
        if any(question.option(c) is None for c in choices):
            return AnswerProblem.UNKNOWN_OPTION
        if len(choices) < self.min_choices(question):
            return AnswerProblem.TOO_FEW
        if len(choices) > self.max_choices(question):
            return AnswerProblem.TOO_MANY
        return None

    def stored(
        self, choices: Sequence[str], text: str | None
    ) -> tuple[tuple[str, ...], str | None]:
        """What is stored of a valid answer: (choices, each once, in order; text)."""
        return tuple(dict.fromkeys(choices)), None

    def pick(
        self, question: Question, selected: Sequence[str], option_id: str, chosen: bool = True
    ) -> list[str] | AnswerProblem:
        """The selection after a tap that sets `option_id` (an option of the question) chosen
        or not, or why not. A tap says what it sets: repeated, it changes nothing more."""
        return AnswerProblem.UNKNOWN_OPTION

    @abstractmethod
    def hint(self, question: Question, translator: Translator, draft: str | None) -> str:
        """The line under the question saying how to answer (`draft`: the text typed so far)."""

    def shown_answer(
        self,
        question: Question,
        choices: Sequence[str],
        text: str | None,
        consultation: Consultation,
        lang: str,
    ) -> str:
        """A stored answer as the review screen shows it (HTML)."""
        labels = [consultation.text(o.label, lang) for o in question.options if o.id in choices]
        return escape(", ".join(labels)) if labels else "—"

    def export_headers(self, question: Question) -> list[str]:
        """Its columns in the responses export (stable identifiers, the same in every language)."""
        return [question.id]

    @abstractmethod
    def export_cells(
        self, question: Question, asked: bool, chosen: set[str], text: str | None
    ) -> list[Cell]:
        """A submitted response's cells under `export_headers` (`asked`: the question was shown)."""

    def _within_options(self, question: Question) -> Iterator[tuple[Loc, str]]:
        n = len(question.options)
        if question.min is not None and question.min > n:
            yield ("min",), f"min {question.min} is more than the {n} options"
        if question.max is not None and question.max > n:
            yield ("max",), f"max {question.max} is more than the {n} options"


class SingleChoice(QuestionKind):
    """One option among several; a tap answers."""

    answers_at_once = True
    marks = ("🔘", "⚪")

    def problems(self, question: Question) -> Iterator[tuple[Loc, str]]:
        if len(question.options) < 2:
            yield ("options",), "a single-choice question needs at least two options"
        if question.max not in (None, 1):
            yield ("max",), "a single-choice question takes one answer"
        yield from self._within_options(question)

    def min_choices(self, question: Question) -> int:
        return 1 if question.min is None else question.min

    def max_choices(self, question: Question) -> int:
        return 1

    def pick(
        self, question: Question, selected: Sequence[str], option_id: str, chosen: bool = True
    ) -> list[str] | AnswerProblem:
        return [option_id]  # its buttons only ever select

    def hint(self, question: Question, translator: Translator, draft: str | None) -> str:
        _ = translator.gettext
        return _("Touchez votre réponse.")

    def export_cells(
        self, question: Question, asked: bool, chosen: set[str], text: str | None
    ) -> list[Cell]:
        return [next(iter(sorted(chosen)), None)]  # the chosen option's id


class MultipleChoice(QuestionKind):
    """Several options, ticked one by one, then « Suivant »."""

    def problems(self, question: Question) -> Iterator[tuple[Loc, str]]:
        if not question.options:
            yield ("options",), "a multi-choice question needs options"
        yield from self._within_options(question)

    def pick(
        self, question: Question, selected: Sequence[str], option_id: str, chosen: bool = True
    ) -> list[str] | AnswerProblem:
        if chosen == (option_id in selected):
            picked = list(selected)  # already as the tap sets it
        elif not chosen:
            picked = [o for o in selected if o != option_id]
        elif len(selected) >= self.max_choices(question):
            return AnswerProblem.TOO_MANY
        else:
            picked = [*selected, option_id]
        # The file's order, so that stored answers and the review read naturally.
        order = [o.id for o in question.options]
        return sorted(picked, key=order.index)

    def hint(self, question: Question, translator: Translator, draft: str | None) -> str:
        _ = translator.gettext
        ngettext = translator.ngettext
        hint = _("Touchez une ou plusieurs réponses, puis « Suivant ».")
        n = self.min_choices(question)
        if n > 1:
            hint += " " + ngettext("Au moins {n} réponse.", "Au moins {n} réponses.", n).format(n=n)
        n = self.max_choices(question)
        if n < len(question.options):
            hint += " " + ngettext("Au plus {n} réponse.", "Au plus {n} réponses.", n).format(n=n)
        return hint

    def export_headers(self, question: Question) -> list[str]:
        return [f"{question.id}:{o.id}" for o in question.options]

    def export_cells(
        self, question: Question, asked: bool, chosen: set[str], text: str | None
    ) -> list[Cell]:
        # 1 or 0 per option; empty cells for a question never asked (its condition was not met).
        return [(1 if o.id in chosen else 0) if asked else None for o in question.options]


# UTF-16 units of a typed answer shown under its question (the screen stays within 4096).
DRAFT_SHOWN = 2500


class OpenText(QuestionKind):
    """A free answer in a typed message; listed, never counted."""

    takes_text = True
    counted = False

    def problems(self, question: Question) -> Iterator[tuple[Loc, str]]:
        if question.options:
            yield ("options",), "a text question has no options"
        if question.max is not None:
            yield ("max",), "a text question has no max (use max_length)"

    def check(
        self, question: Question, choices: Sequence[str], text: str | None
    ) -> AnswerProblem | None:
        value = (text or "").strip()
        if not value and self.min_choices(question) > 0:
            return AnswerProblem.EMPTY_TEXT
        if len(value) > question.max_length:
            return AnswerProblem.TEXT_TOO_LONG
        return None

    def stored(
        self, choices: Sequence[str], text: str | None
    ) -> tuple[tuple[str, ...], str | None]:
        return (), text

    def hint(self, question: Question, translator: Translator, draft: str | None) -> str:
        _ = translator.gettext
        hint = _("Écrivez votre réponse dans un message.")
        if draft:
            # Shortened on screen (stored whole): the question must still fit one message.
            hint += "\n" + _("Votre réponse : {answer}").format(
                answer=clip_html(draft, DRAFT_SHOWN)
            )
        return hint

    def shown_answer(
        self,
        question: Question,
        choices: Sequence[str],
        text: str | None,
        consultation: Consultation,
        lang: str,
    ) -> str:
        return escape(text or "—")

    def export_cells(
        self, question: Question, asked: bool, chosen: set[str], text: str | None
    ) -> list[Cell]:
        return [text]  # the answer itself


# The file's `kind:` -> its class: one line per kind.
QUESTION_KINDS: dict[str, QuestionKind] = {
    "single": SingleChoice(),
    "multi": MultipleChoice(),
    "text": OpenText(),
}


def kind_named(name: object) -> QuestionKind:
    """The kind a file's `kind:` names; ValueError, worded for the file's author, if none."""
    if isinstance(name, str) and name in QUESTION_KINDS:
        return QUESTION_KINDS[name]
    *others, last = (repr(k) for k in QUESTION_KINDS)
    raise ValueError(f"input should be {', '.join(others)} or {last}, got {name!r}")


def kind_of(question: Question) -> QuestionKind:
    return QUESTION_KINDS[question.kind]
