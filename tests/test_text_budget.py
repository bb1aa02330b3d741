"""Telegram counts lengths in UTF-16 code units, and an HTML message cut short must still
parse: the budgets count what Telegram counts and never leave a tag open."""

from __future__ import annotations

import re

from bot.text_budget import clip, clip_html, clip_line, fit, join_within, pack_lines, units
from playground import parse_html

EMOJI = "🙂"  # one character, two UTF-16 code units


def visible_units(html: str) -> int:
    text, _ = parse_html(html)  # raises on unbalanced or broken markup
    return units(text)


def test_units_count_what_telegram_counts() -> None:
    assert units("abc") == 3
    assert units(EMOJI * 3) == 6
    assert units("é") == 1


def test_emoji_texts_are_clipped_by_utf16_units() -> None:
    # 3,000 emoji are 3,000 characters (under 4,096) but 6,000 units: Telegram refused them.
    text = EMOJI * 3000
    assert units(clip(text, 4096)) <= 4096
    assert units(clip_html(text, 4096)) <= 4096
    assert units(clip_html("a" + EMOJI * 10, 6)) <= 6
    assert clip("abc", 3) == "abc"


def test_an_html_line_cut_short_closes_its_tags() -> None:
    line = "<b>" + "x" * 50 + '</b> <a href="https://t.me/b?start=i_1">' + "y" * 50 + "</a>"
    for limit in range(5, 120, 7):
        cut = clip_line(line, limit)
        assert units(cut) <= limit, (limit, cut)
        visible_units(cut)  # parses: no tag cut through, none left open
        assert not re.search(r"<[^>]*$", cut)


def test_fit_never_leaves_a_tag_open() -> None:
    html = (
        "<blockquote>" + "\n".join(f"ligne {i} {EMOJI * 20}" for i in range(200)) + "</blockquote>"
    )
    cut = fit(html, 4000)
    assert units(cut) <= 4000
    visible_units(cut)
    assert cut.endswith("…</blockquote>")


def test_packing_counts_units() -> None:
    lines = [EMOJI * 500 for _ in range(10)]
    for message in pack_lines("<b>Titre</b>", lines, 4000):
        assert units(message) <= 4000
        visible_units(message)
    assert all(units(m) <= 1000 for m in join_within([EMOJI * 300] * 6, 1000))
