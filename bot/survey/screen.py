"""The survey screen: its dialog data, and what its buttons say.

A tap must mean what the member saw, whenever it arrives. Under a crowd a member taps again
before the screen changes, or a tap arrives after the screen moved on: a button that said
"toggle this option" or "next question" would then undo a choice or skip a question. So
every button of a question screen carries the stamp of the screen it was drawn on, and an
option's button says the state it sets (select or unselect), not "toggle":

- the stamp goes up at each change of the screen (a pick, a new question);
- a question's *visit* starts when it is put on screen: a tap drawn during an earlier visit,
  or one that names an option changed since it was drawn, changes nothing, and the current
  screen is drawn again;
- so two taps of one option leave it as the first one set it, and a late tap never flips a
  choice back; a tap on another option of the same visit, made before the screen caught up
  with the first, still counts (nothing since contradicts it).

Item ids stay short: a button's callback data is at most 64 bytes, and aiogram-dialog puts
the intent id (9) and the widget id in it; `12+inclusion` leaves room for 24-character ids.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from bot.consultation import Question
from bot.ui.dialog_data import DialogRecord, Entry
from storage.repositories.survey import StoredAnswer

SELECT, UNSELECT = "+", "-"
_OPTION_TAP = re.compile(r"^(\d{1,9})([+-])([a-z0-9_]{1,24})$")
_STAMP = re.compile(r"^\d{1,9}$")


@dataclass(frozen=True, slots=True)
class OptionTap:
    """A tap on an option's button: the screen it was drawn on, the option, the state it sets."""

    stamp: int
    option_id: str
    chosen: bool

    def item_id(self) -> str:
        return f"{self.stamp}{SELECT if self.chosen else UNSELECT}{self.option_id}"

    @classmethod
    def parse(cls, item_id: str) -> OptionTap | None:
        """None for anything our screens never drew (a forged or mangled button)."""
        match = _OPTION_TAP.match(item_id)
        if match is None:
            return None
        stamp, sign, option_id = match.groups()
        return cls(int(stamp), option_id, sign == SELECT)


def parse_stamp(item_id: str) -> int | None:
    """The stamp a navigation button (◀️, ▶️, ✅) carries; None if forged."""
    return int(item_id) if _STAMP.match(item_id) else None


class SurveyData(DialogRecord):
    """The survey dialog's data, typed. The short keys are what the FSM storage holds: a
    dialog begun before an upgrade resumes (its buttons, without stamps, are refused politely
    and drawn again)."""

    __slots__ = ()

    question_id = Entry[str]("q", "")  # the question on screen
    reviewing = Entry[bool]("rv", False)  # came from the review: confirming goes back there
    text = Entry[str | None]("txt", None)  # the answer typed on screen
    stamp = Entry[int]("st", 0)  # the screen's stamp, drawn into its buttons
    _visit = Entry[int]("vs", 0)  # the stamp the question was put on screen with

    @property
    def selected(self) -> list[str]:
        """The options ticked on screen (a copy)."""
        return list(self.data.get("sel", ()))

    @property
    def answers(self) -> dict[str, StoredAnswer]:
        """The member's stored answers as the last write left them (a copy kept here)."""
        raw: dict[str, list[Any]] = self.data.get("ans", {})
        return {qid: StoredAnswer(tuple(choices), text) for qid, (choices, text) in raw.items()}

    @answers.setter
    def answers(self, value: dict[str, StoredAnswer]) -> None:
        self.data["ans"] = {q: [list(a.choices), a.text] for q, a in value.items()}

    def enter(self, question: Question, answers: dict[str, StoredAnswer]) -> None:
        """Put `question` on screen, with its stored answer: a new visit."""
        stored = answers.get(question.id)
        self.question_id = question.id
        self.data["sel"] = list(stored.choices) if stored else []
        self.text = stored.text if stored else None
        self.stamp = self._visit = self.stamp + 1
        self.data["chg"] = {}

    def pick(self, option_id: str, selected: list[str]) -> None:
        """The selection after a tap on `option_id`: the screen changes."""
        self.data["sel"] = list(selected)
        self.stamp += 1
        self.data.setdefault("chg", {})[option_id] = self.stamp

    def type_text(self, text: str) -> None:
        self.text = text
        self.stamp += 1

    def drawn_now(self, stamp: int) -> bool:
        """Whether a button drawn with `stamp` belongs to the question's current visit."""
        return self._visit <= stamp <= self.stamp

    def as_seen(self, tap: OptionTap) -> bool:
        """Whether the option is still as the tapped screen showed it (nothing contradicts
        the tap): drawn during this visit, and the option unchanged since."""
        changed = int(self.data.get("chg", {}).get(tap.option_id, 0))
        return self.drawn_now(tap.stamp) and changed <= tap.stamp

    def option_items(
        self, question: Question, labels: list[str], marks: tuple[str, str], select_only: bool
    ) -> list[tuple[str, str]]:
        """The option buttons as (item id, label): a ticked option's button unticks it, unless
        a tap only ever selects (`select_only`: a single choice)."""
        on, off = marks
        selected = set(self.selected)
        return [
            (
                OptionTap(self.stamp, o.id, select_only or o.id not in selected).item_id(),
                f"{on if o.id in selected else off} {label}",
            )
            for o, label in zip(question.options, labels, strict=True)
        ]
