"""The checkers a Bot API call is validated with: one node per type, and Telegram's rules.

Nodes check a value and return it coerced (form data arrives as strings); rules enforce
what the declared types do not say: lengths after entity parsing, button and command syntax.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .html import HtmlParseError, parse_html, utf16_len

if TYPE_CHECKING:
    from .spec import BotApiSpec

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


# --------------------------------------------------------------------------- type nodes


class _Ctx:
    """Per-call validation state: collected errors and deprecations, the request's files."""

    __slots__ = ("deprecated", "errors", "files", "rendered")

    def __init__(self, files: Mapping[str, UploadedFile] | None) -> None:
        self.errors: list[FieldError] = []
        self.deprecated: list[FieldError] = []
        self.files = files
        self.rendered: dict[str, tuple[str, list[dict[str, Any]]]] = {}

    def fork(self) -> _Ctx:
        # its own deprecations: a union keeps only those of the alternative that matched
        sub = _Ctx(self.files)
        sub.rendered = self.rendered
        return sub

    def error(self, param: str, message: str, description: str | None = None) -> None:
        self.errors.append(FieldError(param, message, description or f'field "{param}": {message}'))

    def deprecate(self, param: str, note: str) -> None:
        self.deprecated.append(FieldError(param, f"deprecated: {note}", "deprecated"))


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
                ctx.deprecated.extend(sub.deprecated)
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
    deprecated: str | None  # the spec's note, when its description says it is deprecated


def _compile_fields(
    spec: BotApiSpec, owner: str, fields: list[dict[str, Any]]
) -> dict[str, _FieldSpec]:
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
        out[f["name"]] = _FieldSpec(
            f["name"],
            node,
            bool(f["required"]),
            bound,
            "String" in types,
            spec.deprecated.get((owner, f["name"])),
        )
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
        self.deprecated = spec.deprecated.get((name, ""))
        for f in raw.get("fields", []):
            m = _DISCRIMINATOR_RE.search(f["description"])
            if m and f["required"] and f["types"] == ["String"]:
                self.discriminator = (f["name"], m.group(1))
                break

    def _compile(self) -> dict[str, _FieldSpec]:
        # lazy, because types refer to each other (Message -> Message)
        self._fields = _compile_fields(self.spec, self.name, self.raw.get("fields", []))
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
        if self.deprecated is not None:
            ctx.deprecate(path, self.deprecated)
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
            if fs.deprecated is not None:
                ctx.deprecate(sub, fs.deprecated)
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
    # Telegram's "characters" are UTF-16 code units (an emoji outside the BMP counts 2), as
    # for entity offsets; "bytes" (callback_data, payloads) are UTF-8 bytes.
    return len(value.encode("utf-8")) if unit == "bytes" else utf16_len(value)


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
