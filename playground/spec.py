"""Validation of Bot API calls against the scraped Bot API description (api.json).

The spec is compiled lazily into small checker objects, one per method and per type,
and cached, so validating a call costs a handful of dict lookups per parameter.

Besides the declared types, it enforces the limits Telegram enforces that a bot can
break by accident: text/caption lengths (counted after HTML parsing), malformed HTML,
callback_data size, button rules, bot command syntax.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, NamedTuple

# playground/spec.py -> parents[1] is the repository root; shared/ is its sibling.
SHARED_SPEC_PATH = Path(__file__).resolve().parents[2] / "shared" / "telegram-bot-api" / "api.json"
# A copy ships with the package (see telegram-bot-api.SOURCE.txt) for clones without shared/.
BUNDLED_SPEC_PATH = Path(__file__).resolve().parent / "telegram-bot-api.json.gz"
DEFAULT_SPEC_PATH = Path(
    os.environ.get("TELEGRAM_API_SPEC")
    or (SHARED_SPEC_PATH if SHARED_SPEC_PATH.exists() else BUNDLED_SPEC_PATH)
)

PRIMITIVES = frozenset({"Integer", "String", "Boolean", "Float"})
PARSE_MODES = frozenset({"html", "markdown", "markdownv2"})
# Fields of InlineKeyboardButton that do not count as "the" action of the button.
_BUTTON_NON_ACTION = frozenset({"text", "icon_custom_emoji_id", "style"})
_INT_RE = re.compile(r"[+-]?\d+")
_BOUND_RE = re.compile(r"(\d+)-(\d+) (characters|bytes)")
_DISCRIMINATOR_RE = re.compile(r'(?:must be|always) "?([a-z0-9_]+)"?\s*$')
_COMMAND_RE = re.compile(r"[a-z0-9_]{1,32}")


@dataclass(frozen=True, slots=True)
class UploadedFile:
    """A file part of a multipart request."""

    name: str  # the form field name (aiogram uses a random key referenced by attach://)
    filename: str | None
    content_type: str | None
    data: bytes


class FieldError(NamedTuple):
    param: str  # dotted path of the offending value, e.g. reply_markup.inline_keyboard[0][1]
    message: str  # detailed explanation, for the violation log
    description: str  # Telegram-style description, without the "Bad Request: " prefix


@dataclass(slots=True)
class CallValidation:
    method: str
    params: dict[str, Any]  # coerced values (ints, bools, decoded JSON, UploadedFile)
    errors: list[FieldError]
    deprecated: list[FieldError] = field(default_factory=list)
    # top-level text fields after entity parsing: name -> (plain text, entities)
    rendered: dict[str, tuple[str, list[dict[str, Any]]]] = field(default_factory=dict)


# --------------------------------------------------------------------------- HTML


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


def _utf16_len(text: str) -> int:
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
            pos16 += _utf16_len(chunk)
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
                pos16 += _utf16_len(decoded)
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


# --------------------------------------------------------------------------- checkers


class _Ctx:
    """Per-call validation state: collected errors and the request's file parts."""

    __slots__ = ("errors", "files", "rendered")

    def __init__(self, files: Mapping[str, UploadedFile] | None) -> None:
        self.errors: list[FieldError] = []
        self.files = files
        self.rendered: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    def fork(self) -> _Ctx:
        sub = _Ctx(self.files)
        sub.rendered = self.rendered
        return sub

    def error(self, param: str, message: str, description: str | None = None) -> None:
        self.errors.append(FieldError(param, message, description or f'field "{param}": {message}'))


def _describe(value: Any) -> str:
    if isinstance(value, UploadedFile):
        return "an uploaded file"
    text = repr(value)
    return f"{type(value).__name__} {text[:40]}{'...' if len(text) > 40 else ''}"


class _Node:
    name: str = "?"
    # objects and arrays arrive JSON-encoded in form data
    is_structured: bool = False

    def check(self, value: Any, path: str, ctx: _Ctx, loose: bool) -> Any:
        raise NotImplementedError


class _Primitive(_Node):
    def __init__(self, name: str) -> None:
        self.name = name

    def check(self, value: Any, path: str, ctx: _Ctx, loose: bool) -> Any:
        kind = self.name
        if kind == "String":
            if isinstance(value, str):
                if value.startswith("attach://") and not (
                    ctx.files is not None and value[9:] in ctx.files
                ):
                    ctx.error(
                        path,
                        f"attachment {value!r} is not part of the request",
                        "wrong file identifier/HTTP URL specified",
                    )
                return value
            if loose and isinstance(value, int | float) and not isinstance(value, bool):
                return str(value)
        elif kind == "Integer":
            if type(value) is int:
                return value
            if loose and isinstance(value, str) and _INT_RE.fullmatch(value):
                return int(value)
        elif kind == "Boolean":
            if isinstance(value, bool):
                return value
            if loose and isinstance(value, str) and value.lower() in ("true", "false", "1", "0"):
                return value.lower() in ("true", "1")
        elif kind == "Float":
            if isinstance(value, int | float) and not isinstance(value, bool):
                return value
            if loose and isinstance(value, str):
                try:
                    return float(value)
                except ValueError:
                    pass
        ctx.error(
            path,
            f"expected {kind}, got {_describe(value)}",
            f'field "{path}" must be of type {kind}',
        )
        return value


class _InputFileNode(_Node):
    name = "InputFile"

    def check(self, value: Any, path: str, ctx: _Ctx, loose: bool) -> Any:
        if isinstance(value, UploadedFile):
            return value
        if isinstance(value, str) and value.startswith("attach://"):
            if ctx.files is not None and value[9:] in ctx.files:
                return ctx.files[value[9:]]
            ctx.error(
                path,
                f"attachment {value!r} is not part of the request",
                "wrong file identifier/HTTP URL specified",
            )
            return value
        ctx.error(
            path,
            f"expected an uploaded file, got {_describe(value)}",
            f'field "{path}" must be an uploaded file',
        )
        return value


class _AnyNode(_Node):
    """A type the spec names but does not describe: accept anything."""

    def __init__(self, name: str) -> None:
        self.name = name

    def check(self, value: Any, path: str, ctx: _Ctx, loose: bool) -> Any:
        return value


class _Array(_Node):
    is_structured = True

    def __init__(self, item: _Node) -> None:
        self.item = item
        self.name = f"Array of {item.name}"

    def check(self, value: Any, path: str, ctx: _Ctx, loose: bool) -> Any:
        if not isinstance(value, list):
            ctx.error(
                path,
                f"expected {self.name}, got {_describe(value)}",
                f'field "{path}" must be an Array',
            )
            return value
        item = self.item
        return [item.check(v, f"{path}[{i}]", ctx, False) for i, v in enumerate(value)]


class _Union(_Node):
    def __init__(self, alternatives: list[_Node]) -> None:
        self.alternatives = alternatives
        self.name = " or ".join(a.name for a in alternatives)
        self.is_structured = any(a.is_structured for a in alternatives)

    def check(self, value: Any, path: str, ctx: _Ctx, loose: bool) -> Any:
        best: tuple[int, _Ctx] | None = None
        for alt in self.alternatives:
            sub = ctx.fork()
            result = alt.check(value, path, sub, loose)
            if not sub.errors:
                return result
            if best is None or len(sub.errors) < best[0]:
                best = (len(sub.errors), sub)
        assert best is not None
        errors = best[1].errors
        if len(errors) == 1 and errors[0].param == path and "expected" in errors[0].message:
            # every alternative failed on the value itself: say what was expected overall
            ctx.error(
                path,
                f"expected {self.name}, got {_describe(value)}",
                f'field "{path}" must be of type {self.name}',
            )
        else:
            ctx.errors.extend(errors)
        return value


@dataclass(slots=True)
class _Bound:
    lo: int
    hi: int
    unit: str  # "characters" | "bytes"
    after_entities: bool
    parse_mode_field: str | None


@dataclass(slots=True)
class _FieldSpec:
    name: str
    node: _Node
    required: bool
    bound: _Bound | None
    accepts_string: bool


def _compile_fields(spec: BotApiSpec, fields: list[dict[str, Any]]) -> dict[str, _FieldSpec]:
    names = {f["name"] for f in fields}
    out: dict[str, _FieldSpec] = {}
    for f in fields:
        types: list[str] = f["types"]
        node = spec.node_for_types(types)
        bound = None
        if types == ["String"]:
            m = _BOUND_RE.search(f["description"])
            if m:
                after = "after entit" in f["description"]
                pm: str | None = None
                if after:
                    if f"{f['name']}_parse_mode" in names:
                        pm = f"{f['name']}_parse_mode"
                    elif "parse_mode" in names and f["name"] in ("text", "caption"):
                        pm = "parse_mode"
                bound = _Bound(int(m.group(1)), int(m.group(2)), m.group(3), after, pm)
        out[f["name"]] = _FieldSpec(f["name"], node, bool(f["required"]), bound, "String" in types)
    return out


_Hook = Callable[[dict[str, Any], str, _Ctx], None]


class _Object(_Node):
    is_structured = True

    def __init__(self, spec: BotApiSpec, name: str, raw: dict[str, Any]) -> None:
        self.spec = spec
        self.name = name
        self.raw = raw
        self._fields: dict[str, _FieldSpec] | None = None
        self._required: tuple[str, ...] = ()
        self.discriminator: tuple[str, str] | None = None
        self._hooks: list[_Hook] = []
        self._semantic: tuple[_FieldSpec, ...] = ()
        for f in raw.get("fields", []):
            m = _DISCRIMINATOR_RE.search(f["description"])
            if m and f["required"] and f["types"] == ["String"]:
                self.discriminator = (f["name"], m.group(1))
                break

    def _compile(self) -> dict[str, _FieldSpec]:
        # lazy, because types refer to each other (Message -> Message)
        self._fields = _compile_fields(self.spec, self.raw.get("fields", []))
        self._required = tuple(n for n, f in self._fields.items() if f.required)
        self._semantic = _semantic_fields(self._fields)
        self._hooks = _TYPE_HOOKS.get(self.name, [])
        return self._fields

    def check(self, value: Any, path: str, ctx: _Ctx, loose: bool) -> Any:
        fields = self._fields if self._fields is not None else self._compile()
        if not isinstance(value, dict):
            ctx.error(
                path,
                f"expected a JSON object ({self.name}), got {_describe(value)}",
                f'field "{path}" must be a JSON object ({self.name})',
            )
            return value
        out: dict[str, Any] = {}
        for key, v in value.items():
            fs = fields.get(key)
            sub = f"{path}.{key}" if path else key
            if fs is None:
                ctx.error(
                    sub, f"unknown field of {self.name}", f'unknown field "{sub}" in {self.name}'
                )
                continue
            if v is None:  # JSON null is as good as absent
                continue
            out[key] = fs.node.check(v, sub, ctx, False)
        for key in self._required:
            if key not in out:
                sub = f"{path}.{key}" if path else key
                ctx.error(
                    sub,
                    f"required field of {self.name} is missing",
                    f'field "{sub}" is required in {self.name}',
                )
        if self.discriminator is not None:
            dname, dvalue = self.discriminator
            got = value.get(dname)
            if got is not None and got != dvalue:
                sub = f"{path}.{dname}" if path else dname
                ctx.error(sub, f"must be {dvalue!r} for {self.name}, got {got!r}")
        _check_bounds(self._semantic, out, path, ctx)
        for hook in self._hooks:
            hook(out, path, ctx)
        return out


class _Abstract(_Node):
    """A type that is one of its subtypes (ChatMember, BotCommandScope, InputMedia...)."""

    is_structured = True

    def __init__(self, spec: BotApiSpec, name: str, subtypes: list[str]) -> None:
        self.spec = spec
        self.name = name
        self.subtypes = subtypes
        self._union: _Union | None = None
        self._by_disc: dict[str, dict[str, _Node]] | None = None

    def _compile(self) -> None:
        nodes = [self.spec.node_for(s) for s in self.subtypes]
        self._union = _Union(nodes)
        self._union.name = self.name
        by_disc: dict[str, dict[str, _Node]] = {}
        for node in nodes:
            if isinstance(node, _Object) and node.discriminator is not None:
                dname, dvalue = node.discriminator
                by_disc.setdefault(dname, {})[dvalue] = node
        self._by_disc = by_disc

    def check(self, value: Any, path: str, ctx: _Ctx, loose: bool) -> Any:
        if self._union is None:
            self._compile()
        assert self._union is not None and self._by_disc is not None
        if isinstance(value, dict):
            for dname, options in self._by_disc.items():
                if dname in value:
                    node = options.get(value[dname])
                    if node is None:
                        sub = f"{path}.{dname}" if path else dname
                        ctx.error(
                            sub,
                            f"unknown {self.name} {dname} {value[dname]!r}; "
                            f"expected one of {sorted(options)}",
                            f'unsupported {self.name} {dname} "{value[dname]}"',
                        )
                        return value
                    return node.check(value, path, ctx, loose)
        return self._union.check(value, path, ctx, loose)


# --------------------------------------------------------------------------- semantics


def _measure(value: str, unit: str) -> int:
    return len(value.encode("utf-8")) if unit == "bytes" else len(value)


def _bound_description(name: str, value_len: int, b: _Bound, path: str) -> str:
    # Telegram's own wording for the limits bots hit most often
    if name == "callback_data":
        return "BUTTON_DATA_INVALID"
    if name == "text" and b.hi == 4096:
        return "message text is empty" if value_len < b.lo else "message is too long"
    if name == "caption":
        return "message caption is too long"
    return f'parameter "{path}" must be {b.lo}-{b.hi} {b.unit} long, got {value_len}'


def _semantic_fields(fields: dict[str, _FieldSpec]) -> tuple[_FieldSpec, ...]:
    """The fields _check_bounds looks at, computed once per method/type."""
    return tuple(f for f in fields.values() if f.bound or f.name.endswith("parse_mode"))


def _check_bounds(
    fields: tuple[_FieldSpec, ...], values: dict[str, Any], path: str, ctx: _Ctx
) -> None:
    for fs in fields:
        name = fs.name
        if name not in values:
            continue
        if name.endswith("parse_mode") and isinstance(values[name], str):
            pm = values[name]
            if pm and pm.lower() not in PARSE_MODES:
                sub = f"{path}.{name}" if path else name
                ctx.error(sub, f"unsupported parse_mode {pm!r}", "unsupported parse_mode")
            continue
        b = fs.bound
        if b is None:
            continue
        value = values.get(name)
        if not isinstance(value, str):
            continue
        sub = f"{path}.{name}" if path else name
        text = value
        if b.after_entities:
            mode = values.get(b.parse_mode_field) if b.parse_mode_field else None
            if isinstance(mode, str) and mode.lower() == "html":
                try:
                    rendered = parse_html(value)
                except HtmlParseError as exc:
                    ctx.error(sub, f"can't parse entities: {exc}", f"can't parse entities: {exc}")
                    continue
                text = rendered[0]
                ctx.rendered[sub] = rendered
            else:
                ctx.rendered[sub] = (value, [])
            text = text.strip()  # Telegram trims the text before checking it
        length = _measure(text, b.unit)
        if not b.lo <= length <= b.hi:
            ctx.error(
                sub,
                f"must be {b.lo}-{b.hi} {b.unit}, got {length}",
                _bound_description(name, length, b, sub),
            )


def _hook_inline_button(value: dict[str, Any], path: str, ctx: _Ctx) -> None:
    text = value.get("text")
    if isinstance(text, str) and not text.strip():
        ctx.error(f"{path}.text", "inline keyboard button text is empty", "BUTTON_TEXT_INVALID")
    actions = [k for k in value if k not in _BUTTON_NON_ACTION]
    if not actions:
        ctx.error(
            path,
            "inline keyboard button has no action (callback_data, url, ...)",
            "text buttons are unallowed in the inline keyboard",
        )
    elif len(actions) > 1:
        ctx.error(
            path,
            f"inline keyboard button has several actions: {actions}",
            "can't use more than one action per inline keyboard button",
        )


def _hook_reply_button(value: dict[str, Any], path: str, ctx: _Ctx) -> None:
    text = value.get("text")
    if isinstance(text, str) and not text.strip():
        ctx.error(f"{path}.text", "keyboard button text is empty", "BUTTON_TEXT_INVALID")


def _hook_bot_command(value: dict[str, Any], path: str, ctx: _Ctx) -> None:
    command = value.get("command")
    if isinstance(command, str) and not _COMMAND_RE.fullmatch(command):
        ctx.error(
            f"{path}.command",
            f"command {command!r} must be 1-32 characters of [a-z0-9_]",
            "BOT_COMMAND_INVALID",
        )


_TYPE_HOOKS: dict[str, list[_Hook]] = {
    "InlineKeyboardButton": [_hook_inline_button],
    "KeyboardButton": [_hook_reply_button],
    "BotCommand": [_hook_bot_command],
}


def _hook_set_my_commands(params: dict[str, Any], ctx: _Ctx) -> None:
    commands = params.get("commands")
    if isinstance(commands, list) and len(commands) > 100:
        ctx.error("commands", f"at most 100 commands, got {len(commands)}", "too many commands")


_METHOD_HOOKS: dict[str, Callable[[dict[str, Any], _Ctx], None]] = {
    "setMyCommands": _hook_set_my_commands,
}


# --------------------------------------------------------------------------- the spec


class _MethodSpec:
    __slots__ = ("fields", "name", "required", "returns", "semantic")

    def __init__(self, spec: BotApiSpec, raw: dict[str, Any]) -> None:
        self.name: str = raw["name"]
        self.fields = _compile_fields(spec, raw.get("fields", []))
        self.required = tuple(n for n, f in self.fields.items() if f.required)
        self.semantic = _semantic_fields(self.fields)
        self.returns: list[str] = list(raw.get("returns", []))


# Parameters removed from the documentation that Telegram still accepts (and aiogram still
# sends, e.g. disable_web_page_preview from DefaultBotProperties): allowed where their
# replacement exists, and reported as deprecations rather than violations.
LEGACY_PARAMS: dict[str, tuple[str, str]] = {
    "disable_web_page_preview": ("Boolean", "link_preview_options"),
    "reply_to_message_id": ("Integer", "reply_parameters"),
    "allow_sending_without_reply": ("Boolean", "reply_parameters"),
}

_MISSING_DESCRIPTIONS = {"chat_id": "chat_id is empty", "text": "message text is empty"}


class BotApiSpec:
    """The Bot API as described by api.json, compiled for fast validation."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.version: str = data.get("version", "?")
        self._raw_methods: dict[str, dict[str, Any]] = data["methods"]
        self._raw_types: dict[str, dict[str, Any]] = data["types"]
        # Bot API method names are case-insensitive
        self._method_names = {name.lower(): name for name in self._raw_methods}
        self._methods: dict[str, _MethodSpec] = {}
        self._nodes: dict[str, _Node] = {p: _Primitive(p) for p in PRIMITIVES}
        self._nodes["InputFile"] = _InputFileNode()
        self._unions: dict[tuple[str, ...], _Node] = {}

    @classmethod
    def load(cls, path: Path | str | None = None) -> BotApiSpec:
        return _load_cached(str(Path(path or DEFAULT_SPEC_PATH).resolve()))

    # -- lookups

    def canonical_method(self, name: str) -> str | None:
        return self._method_names.get(name.lower())

    def method_returns(self, method: str) -> list[str]:
        return list(self._raw_methods[method].get("returns", []))

    def method_params(self, method: str) -> list[str]:
        return [f["name"] for f in self._raw_methods[method].get("fields", [])]

    def type_fields(self, type_name: str) -> list[str]:
        return [f["name"] for f in self._raw_types[type_name].get("fields", [])]

    def _method(self, name: str) -> _MethodSpec:
        ms = self._methods.get(name)
        if ms is None:
            ms = self._methods[name] = _MethodSpec(self, self._raw_methods[name])
        return ms

    def node_for(self, expr: str) -> _Node:
        node = self._nodes.get(expr)
        if node is not None:
            return node
        if expr.startswith("Array of "):
            node = _Array(self.node_for(expr[len("Array of ") :]))
        else:
            raw = self._raw_types.get(expr)
            if raw is None:
                node = _AnyNode(expr)
            elif raw.get("subtypes"):
                node = _Abstract(self, expr, raw["subtypes"])
            else:
                node = _Object(self, expr, raw)
        self._nodes[expr] = node
        return node

    def node_for_types(self, types: list[str]) -> _Node:
        if len(types) == 1:
            return self.node_for(types[0])
        key = tuple(types)
        node = self._unions.get(key)
        if node is None:
            if all(t.startswith("Array of ") for t in types):
                # "Array of InputMediaPhoto and InputMediaVideo" is split by the scraper into
                # several array types; Telegram accepts a mix, so validate item by item
                items = [t[len("Array of ") :] for t in types]
                node = _Array(self.node_for_types(items))
            else:
                # Integer before String, so that "123" in form data becomes an int
                order = sorted(types, key=lambda t: (t == "String", t != "Integer"))
                node = _Union([self.node_for(t) for t in order])
            self._unions[key] = node
        return node

    # -- validation

    def validate_call(
        self,
        method: str,
        params: Mapping[str, Any],
        files: Mapping[str, UploadedFile] | None = None,
    ) -> CallValidation:
        """Validate one call. `params` may hold strings (form data) or JSON values.

        `method` must be canonical (see canonical_method). File parts whose name is a
        parameter are used as that parameter; the others can be referenced by attach://.
        """
        ms = self._method(method)
        ctx = _Ctx(files or {})
        out: dict[str, Any] = {}
        deprecated: list[FieldError] = []
        for key, value in params.items():
            fs = ms.fields.get(key)
            if fs is None and key in LEGACY_PARAMS:
                legacy_type, replacement = LEGACY_PARAMS[key]
                if replacement in ms.fields:
                    deprecated.append(
                        FieldError(key, f"deprecated, use {replacement}", "deprecated parameter")
                    )
                    out[key] = self.node_for(legacy_type).check(value, key, ctx, True)
                    continue
            if fs is None:
                ctx.error(
                    key,
                    f"unknown parameter of {method} (Bot API {self.version})",
                    f'unknown parameter "{key}"',
                )
                continue
            if value is None:
                continue
            if isinstance(value, str) and fs.node.is_structured:
                decoded = _maybe_json(value, fs.accepts_string)
                if decoded is _BAD_JSON:
                    ctx.error(key, "is not valid JSON", f"can't parse {key} JSON object")
                    continue
                value = decoded
            out[key] = fs.node.check(value, key, ctx, True)
        if files:
            for name, upload in files.items():
                if name in ms.fields and name not in out:
                    out[name] = ms.fields[name].node.check(upload, name, ctx, True)
        for key in ms.required:
            if key not in out and not any(e.param == key for e in ctx.errors):
                ctx.error(
                    key,
                    "required parameter is missing",
                    _MISSING_DESCRIPTIONS.get(key, f'parameter "{key}" is required'),
                )
        _check_bounds(ms.semantic, out, "", ctx)
        hook = _METHOD_HOOKS.get(method)
        if hook is not None:
            hook(out, ctx)
        return CallValidation(method, out, ctx.errors, deprecated, ctx.rendered)

    def validate_object(self, type_expr: str, value: Any) -> list[FieldError]:
        """Strictly validate a JSON value (e.g. an emulator response) against a type."""
        ctx = _Ctx(None)
        self.node_for(type_expr).check(value, "", ctx, False)
        return ctx.errors


_BAD_JSON = object()


def _maybe_json(value: str, accepts_string: bool) -> Any:
    if accepts_string and value[:1] not in ("{", "["):
        return value
    try:
        return json.loads(value)
    except ValueError:
        return value if accepts_string else _BAD_JSON


@lru_cache(maxsize=4)
def _load_cached(path: str) -> BotApiSpec:
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rt", encoding="utf-8") as fh:
        return BotApiSpec(json.load(fh))
