"""The survey's review screen as text: every answer, within Telegram's length limit."""

from __future__ import annotations

from collections.abc import Sequence

from bot.text_budget import MESSAGE_BUDGET, clip_markup, fit, units

# The review window adds a title and one line of help around the answers (any language).
REVIEW_BUDGET = MESSAGE_BUDGET - 300
SEPARATOR = "\n\n"


def _render(entries: Sequence[tuple[str, str]], cap: int | None) -> str:
    return SEPARATOR.join(
        f"{head}\n→ {answer if cap is None else clip_markup(answer, cap)}"
        for head, answer in entries
    )


def review_text(entries: Sequence[tuple[str, str]], budget: int = REVIEW_BUDGET) -> str:
    """(question heading, answer) pairs in HTML, in one message of at most `budget` UTF-16
    units: when long free-text answers would overflow it, the longest are shortened ("…"),
    each to the same largest length that fits, so that the screen and its send button
    always reach the member. The answers themselves are stored whole."""
    whole = _render(entries, None)
    if units(whole) <= budget:
        return whole
    low, high = 0, max((units(answer) for _, answer in entries), default=0)
    while low < high:  # the largest cap that fits
        cap = (low + high + 1) // 2
        if units(_render(entries, cap)) <= budget:
            low = cap
        else:
            high = cap - 1
    # Too many questions for even short answers: cut at a line (never through a tag).
    return fit(_render(entries, max(low, 1)), budget)
