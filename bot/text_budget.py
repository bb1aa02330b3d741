"""Length budgets for messages built from members' texts: Telegram refuses more than 4096
characters (1024 for a caption, 200 for an alert), so every such message is cut to fit."""

from __future__ import annotations

from collections.abc import Iterable, Sequence
from html import escape

MESSAGE_LIMIT = 4096
# Telegram counts UTF-16 code units; the HTML we send is never shorter than what it shows.
MESSAGE_BUDGET = 4000
ALERT_LIMIT = 200
ELLIPSIS = "…"


def clip(text: str, limit: int) -> str:
    """Plain text cut to `limit` characters, ending with "…" when cut."""
    if len(text) <= limit:
        return text
    return text[: max(0, limit - 1)].rstrip() + ELLIPSIS


def clip_html(raw: str, limit: int) -> str:
    """`raw` escaped for HTML and cut so that the escaped text fits `limit` (never mid-entity)."""
    escaped = escape(raw)
    if len(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for char in raw:
        piece = escape(char)
        if used + len(piece) > limit - 1:
            break
        out.append(piece)
        used += len(piece)
    return "".join(out).rstrip() + ELLIPSIS


def fit(html: str, limit: int = MESSAGE_BUDGET) -> str:
    """Last resort for an assembled HTML message: cut at a line boundary, then "…"."""
    if len(html) <= limit:
        return html
    lines, used = [], 0
    for line in html.split("\n"):
        if used + len(line) + 1 > limit - 1:
            break
        lines.append(line)
        used += len(line) + 1
    return "\n".join(lines) + "\n" + ELLIPSIS


def pages(sizes: Sequence[int], budget: int, most: int) -> list[tuple[int, int]]:
    """Split items of the given sizes into pages of at most `most` items and `budget`
    characters; an item larger than the budget gets a page to itself (its caller clips it)."""
    ranges: list[tuple[int, int]] = []
    start, used = 0, 0
    for i, size in enumerate(sizes):
        if i > start and (used + size > budget or i - start >= most):
            ranges.append((start, i))
            start, used = i, 0
        used += size
    if start < len(sizes) or not ranges:
        ranges.append((start, len(sizes)))
    return ranges


def join_within(pieces: Iterable[str], limit: int, sep: str = "\n") -> list[str]:
    """Pieces joined with `sep` into as few messages of at most `limit` characters as they
    fit in, in order; the caller makes each piece fit on its own."""
    messages: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{sep}{piece}" if current else piece
        if len(candidate) <= limit:
            current = candidate
        else:
            if current:
                messages.append(current)
            current = piece
    if current:
        messages.append(current)
    return messages


def clip_line(line: str, limit: int) -> str:
    return line if len(line) <= limit else line[: limit - 1] + ELLIPSIS


def pack_lines(header: str, lines: Sequence[str], limit: int = MESSAGE_BUDGET) -> list[str]:
    """Header then lines, in as few messages as fit; each line clipped to fit on its own."""
    clipped = (clip_line(line, limit // 2) for line in lines)
    return join_within([header, *clipped] if header else clipped, limit)
