"""Telegram's HTML subset, as the Bot API parses it: plain text and message entities.

Entity offsets are in UTF-16 code units, as in the Bot API.
"""

from __future__ import annotations

import re
from typing import Any


class HtmlParseError(ValueError):
    """Raised for HTML that Telegram would refuse ("can't parse entities")."""


_HTML_ENTITY_TYPES: dict[str, str] = {
    "b": "bold",
    "strong": "bold",
    "i": "italic",
    "em": "italic",
    "u": "underline",
    "ins": "underline",
    "s": "strikethrough",
    "strike": "strikethrough",
    "del": "strikethrough",
    "span": "spoiler",
    "tg-spoiler": "spoiler",
    "a": "text_link",
    "code": "code",
    "pre": "pre",
    "blockquote": "blockquote",
    "tg-emoji": "custom_emoji",
    "tg-time": "date_time",
}
_NAMED_ENTITIES = {"lt": "<", "gt": ">", "amp": "&", "quot": '"'}
_ENTITY_RE = re.compile(r"&(#[0-9]{1,7}|#[xX][0-9a-fA-F]{1,6}|[a-zA-Z]+);")
_TAG_NAME_RE = re.compile(r"[a-zA-Z][a-zA-Z0-9-]*")
_ATTR_RE = re.compile(r"""\s*([a-zA-Z_-]+)(?:\s*=\s*("[^"]*"|'[^']*'|[^\s>"']+))?""")


def utf16_len(text: str) -> int:
    """The length Telegram counts: UTF-16 code units."""
    if text.isascii():
        return len(text)
    return len(text.encode("utf-16-le")) // 2


def _byte_offset(text: str, index: int) -> int:
    return len(text[:index].encode("utf-8"))


def _decode_entity(match: re.Match[str]) -> str | None:
    body = match.group(1)
    if body[0] == "#":
        code = int(body[2:], 16) if body[1] in "xX" else int(body[1:])
        if 0 < code <= 0x10FFFF and not 0xD800 <= code <= 0xDFFF:
            return chr(code)
        return None
    return _NAMED_ENTITIES.get(body)


def _unescape(text: str) -> str:
    def repl(m: re.Match[str]) -> str:
        decoded = _decode_entity(m)
        return m.group(0) if decoded is None else decoded

    return _ENTITY_RE.sub(repl, text) if "&" in text else text


def parse_html(text: str) -> tuple[str, list[dict[str, Any]]]:
    """Parse Telegram's HTML subset: return (plain text, message entities).

    Raises HtmlParseError with Telegram's wording for unsupported or unbalanced tags.
    Offsets of entities are in UTF-16 code units, as in the Bot API.
    """
    if "<" not in text and "&" not in text:
        return text, []
    out: list[str] = []
    pos16 = 0  # UTF-16 length of what is in `out`
    stack: list[tuple[str, dict[str, str], int]] = []
    entities: list[dict[str, Any]] = []
    i, n = 0, len(text)
    while i < n:
        lt = text.find("<", i)
        amp = text.find("&", i)
        j = min(x for x in (lt, amp, n) if x >= 0)
        if j > i:
            chunk = text[i:j]
            out.append(chunk)
            pos16 += utf16_len(chunk)
            i = j
            continue
        if text[i] == "&":
            m = _ENTITY_RE.match(text, i)
            decoded = _decode_entity(m) if m else None
            if m is None or decoded is None:
                out.append("&")  # Telegram keeps unknown entities literally
                pos16 += 1
                i += 1
            else:
                out.append(decoded)
                pos16 += utf16_len(decoded)
                i = m.end()
            continue
        # a tag
        if text.startswith("</", i):
            end = text.find(">", i)
            if end < 0:
                raise HtmlParseError(f"Unclosed end tag at byte offset {_byte_offset(text, i)}")
            name = text[i + 2 : end].strip().lower()
            if not stack:
                raise HtmlParseError(f"Unexpected end tag at byte offset {_byte_offset(text, i)}")
            open_name, attrs, start16 = stack[-1]
            if name and name != open_name:
                raise HtmlParseError(
                    f"Unmatched end tag at byte offset {_byte_offset(text, i)}, "
                    f'expected "</{open_name}>", found "</{name}>"'
                )
            stack.pop()
            entity = _make_entity(open_name, attrs, start16, pos16 - start16)
            if entity is not None:
                entities.append(entity)
            i = end + 1
            continue
        m = _TAG_NAME_RE.match(text, i + 1)
        name = m.group(0).lower() if m else ""
        if name not in _HTML_ENTITY_TYPES:
            raise HtmlParseError(
                f'Unsupported start tag "{name}" at byte offset {_byte_offset(text, i)}'
            )
        k = i + 1 + len(name)
        attrs: dict[str, str] = {}
        while True:
            am = _ATTR_RE.match(text, k)
            if am is None or am.end() == k:
                break
            value = am.group(2) or ""
            if value[:1] in ("'", '"'):
                value = value[1:-1]
            attrs[am.group(1).lower()] = _unescape(value)
            k = am.end()
        while k < n and text[k].isspace():
            k += 1
        if k >= n or text[k] != ">":
            raise HtmlParseError(f"Unclosed start tag at byte offset {_byte_offset(text, i)}")
        if name == "span" and attrs.get("class") != "tg-spoiler":
            raise HtmlParseError('Tag "span" must have class "tg-spoiler"')
        stack.append((name, attrs, pos16))
        i = k + 1
    if stack:
        raise HtmlParseError(f'Can\'t find end tag corresponding to start tag "{stack[-1][0]}"')
    entities.sort(key=lambda e: (e["offset"], -e["length"]))
    return "".join(out), entities


def _make_entity(
    tag: str, attrs: dict[str, str], offset: int, length: int
) -> dict[str, Any] | None:
    if length <= 0:
        return None
    kind = _HTML_ENTITY_TYPES[tag]
    entity: dict[str, Any] = {"type": kind, "offset": offset, "length": length}
    if tag == "a":
        if not attrs.get("href"):
            return None
        entity["url"] = attrs["href"]
    elif tag == "blockquote" and "expandable" in attrs:
        entity["type"] = "expandable_blockquote"
    elif tag == "tg-emoji":
        entity["custom_emoji_id"] = attrs.get("emoji-id", "")
    elif tag == "code" and attrs.get("class", "").startswith("language-"):
        entity["language"] = attrs["class"][len("language-") :]
    return entity


def render_text(text: str, parse_mode: str | None) -> tuple[str, list[dict[str, Any]]]:
    """Text as the user sees it: HTML is parsed; Markdown modes are left as they are."""
    if parse_mode and parse_mode.lower() == "html":
        return parse_html(text)
    return text, []
