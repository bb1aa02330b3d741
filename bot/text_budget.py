"""Length budgets for messages built from members' texts: Telegram refuses more than 4096
(1024 for a caption, 200 for an alert), counted in UTF-16 code units — an emoji is two — so
every such message is measured with `units` and cut to fit, never through or inside a tag."""

from __future__ import annotations

import re
from collections.abc import Iterable, Sequence
from html import escape

MESSAGE_LIMIT = 4096
# The HTML we send is never shorter than the text Telegram shows: a margin for the rest.
MESSAGE_BUDGET = 4000
ALERT_LIMIT = 200
ELLIPSIS = "…"
# An HTML message as tags, entities and single characters.
_TOKENS = re.compile(r"<[^>]*>|&#?\w{1,10};|.", re.DOTALL)
_TAG_NAME = re.compile(r"<\s*(/?)\s*([a-zA-Z-]+)")


def units(text: str) -> int:
    """The length Telegram counts: UTF-16 code units."""
    return len(text.encode("utf-16-le")) // 2


def _cut_units(text: str, limit: int) -> str:
    """The longest prefix of plain `text` within `limit` units."""
    if units(text) <= limit:
        return text
    used, end = 0, 0
    for end, char in enumerate(text):
        used += 2 if ord(char) > 0xFFFF else 1
        if used > limit:
            return text[:end]
    return text


def clip(text: str, limit: int) -> str:
    """Plain text cut to `limit` units, ending with "…" when cut."""
    if units(text) <= limit:
        return text
    return _cut_units(text, max(0, limit - 1)).rstrip() + ELLIPSIS


def clip_html(raw: str, limit: int) -> str:
    """`raw` escaped for HTML and cut so that the escaped text fits `limit` (never mid-entity)."""
    escaped = escape(raw)
    if units(escaped) <= limit:
        return escaped
    out: list[str] = []
    used = 0
    for char in raw:
        piece = escape(char)
        size = units(piece)
        if used + size > limit - 1:
            break
        out.append(piece)
        used += size
    return "".join(out).rstrip() + ELLIPSIS


def _closing(open_tags: list[str]) -> str:
    return "".join(f"</{name}>" for name in reversed(open_tags))


def _track(open_tags: list[str], tag: re.Match[str]) -> list[str]:
    """The tags open after `tag`: an opening one pushed, a closing one popped."""
    name = tag.group(2).lower()
    if not tag.group(1):
        return [*open_tags, name]
    if name in open_tags:
        i = len(open_tags) - 1 - open_tags[::-1].index(name)
        return open_tags[:i] + open_tags[i + 1 :]
    return open_tags


def _open_tags(html: str) -> list[str]:
    open_tags: list[str] = []
    for tag in _TAG_NAME.finditer(html):
        open_tags = _track(open_tags, tag)
    return open_tags


def clip_markup(html: str, limit: int) -> str:
    """An HTML fragment cut to `limit` units with "…": never through a tag or an entity, and
    the tags left open closed again, so Telegram still parses what is sent."""
    if units(html) <= limit:
        return html
    out: list[str] = []
    open_tags: list[str] = []
    used = 0
    for token in _TOKENS.findall(html):
        tag = _TAG_NAME.match(token) if token.startswith("<") else None
        after = _track(open_tags, tag) if tag else open_tags
        if used + units(token) + units(ELLIPSIS) + units(_closing(after)) > limit:
            break
        out.append(token)
        used += units(token)
        open_tags = after
    return "".join(out).rstrip() + ELLIPSIS + _closing(open_tags)


def fit(html: str, limit: int = MESSAGE_BUDGET) -> str:
    """Last resort for an assembled HTML message: cut at a line boundary, then "…" and the
    tags still open closed."""
    if units(html) <= limit:
        return html
    kept = ""
    for line in html.split("\n"):
        candidate = f"{kept}{line}\n"
        if units(candidate) + units(ELLIPSIS) + units(_closing(_open_tags(candidate))) > limit:
            break
        kept = candidate
    if not kept:
        return clip_markup(html, limit)
    return kept + ELLIPSIS + _closing(_open_tags(kept))


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
    """Pieces joined with `sep` into as few messages of at most `limit` units as they
    fit in, in order; the caller makes each piece fit on its own."""
    messages: list[str] = []
    current = ""
    for piece in pieces:
        candidate = f"{current}{sep}{piece}" if current else piece
        if units(candidate) <= limit:
            current = candidate
        else:
            if current:
                messages.append(current)
            current = piece
    if current:
        messages.append(current)
    return messages


def clip_line(line: str, limit: int) -> str:
    return clip_markup(line, limit)


def pack_lines(header: str, lines: Sequence[str], limit: int = MESSAGE_BUDGET) -> list[str]:
    """Header then lines, in as few messages as fit; each line clipped to fit on its own."""
    clipped = (clip_line(line, limit // 2) for line in lines)
    return join_within([header, *clipped] if header else clipped, limit)
