"""Validation of Bot API calls against the scraped Bot API description (api.json).

The spec is compiled lazily into small checker objects (validation.py), one per method and
per type, and cached, so validating a call costs a handful of dict lookups per parameter.

Besides the declared types, it enforces the limits Telegram enforces that a bot can
break by accident: text/caption lengths (counted after HTML parsing, in UTF-16 code units),
malformed HTML, callback_data size, button rules, bot command syntax. What is deprecated
(LEGACY_PARAMS, and what the descriptions call deprecated) is reported too.
"""

from __future__ import annotations

import gzip
import json
import os
import re
from collections.abc import Mapping
from functools import lru_cache
from pathlib import Path
from typing import Any

from .validation import (
    _METHOD_HOOKS,
    CallValidation,
    FieldError,
    UploadedFile,
    _Abstract,
    _AnyNode,
    _Array,
    _check_bounds,
    _compile_fields,
    _Ctx,
    _InputFileNode,
    _Node,
    _Object,
    _Primitive,
    _semantic_fields,
    _Union,
)

# playground/emulator/spec.py -> parents[2] is the repository root; shared/ is its sibling.
SHARED_SPEC_PATH = Path(__file__).resolve().parents[3] / "shared" / "telegram-bot-api" / "api.json"
# A copy ships with the package (see telegram-bot-api.SOURCE.txt) for clones without shared/.
BUNDLED_SPEC_PATH = Path(__file__).resolve().parents[1] / "telegram-bot-api.json.gz"
DEFAULT_SPEC_PATH = Path(
    os.environ.get("TELEGRAM_API_SPEC")
    or (SHARED_SPEC_PATH if SHARED_SPEC_PATH.exists() else BUNDLED_SPEC_PATH)
)

PRIMITIVES = frozenset({"Integer", "String", "Boolean", "Float"})


class _MethodSpec:
    __slots__ = ("deprecated", "fields", "name", "required", "returns", "semantic")

    def __init__(self, spec: BotApiSpec, raw: dict[str, Any]) -> None:
        self.name: str = raw["name"]
        self.deprecated = spec.deprecated.get((self.name, ""))
        self.fields = _compile_fields(spec, self.name, raw.get("fields", []))
        self.required = tuple(n for n, f in self.fields.items() if f.required)
        self.semantic = _semantic_fields(self.fields)
        self.returns: list[str] = list(raw.get("returns", []))


# Parameters removed from the documentation that Telegram still accepts (and aiogram still
# sends, e.g. disable_web_page_preview from DefaultBotProperties(link_preview_is_disabled)):
# accepted where their replacement exists, and reported as deprecated (a violation).
LEGACY_PARAMS: dict[str, tuple[str, str]] = {
    "disable_web_page_preview": ("Boolean", "link_preview_options"),
    "reply_to_message_id": ("Integer", "reply_parameters"),
    "allow_sending_without_reply": ("Boolean", "reply_parameters"),
}

# api.json has no machine-readable deprecation marker (and Bot API 10.1 describes nothing as
# deprecated: Telegram drops what it retires from the page, hence LEGACY_PARAMS). So a method,
# type, parameter or field is deprecated when its description says "deprecated"; the notes
# are read once at load, keyed (method or type, field), with "" for the method or type itself.
_DEPRECATED_RE = re.compile(r"\bdeprecated\b", re.IGNORECASE)

_MISSING_DESCRIPTIONS = {"chat_id": "chat_id is empty", "text": "message text is empty"}


class BotApiSpec:
    """The Bot API as described by api.json, compiled for fast validation."""

    def __init__(self, data: dict[str, Any]) -> None:
        self.version: str = data.get("version", "?")
        self._raw_methods: dict[str, dict[str, Any]] = data["methods"]
        self._raw_types: dict[str, dict[str, Any]] = data["types"]
        self.deprecated: dict[tuple[str, str], str] = _deprecation_notes(data)
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
        if ms.deprecated is not None:
            ctx.deprecate("", ms.deprecated)
        out: dict[str, Any] = {}
        for key, value in params.items():
            fs = ms.fields.get(key)
            if fs is None and key in LEGACY_PARAMS:
                legacy_type, replacement = LEGACY_PARAMS[key]
                if replacement in ms.fields:
                    ctx.deprecate(key, f"removed from the Bot API, use {replacement}")
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
            if fs.deprecated is not None:
                ctx.deprecate(key, fs.deprecated)
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
        return CallValidation(method, out, ctx.errors, ctx.deprecated, ctx.rendered)

    def validate_object(self, type_expr: str, value: Any) -> list[FieldError]:
        """Strictly validate a JSON value (e.g. an emulator response) against a type."""
        ctx = _Ctx(None)
        self.node_for(type_expr).check(value, "", ctx, False)
        return ctx.errors


_BAD_JSON = object()


def _deprecation_notes(data: dict[str, Any]) -> dict[tuple[str, str], str]:
    notes: dict[tuple[str, str], str] = {}
    for kind in ("methods", "types"):
        for name, raw in data[kind].items():
            description = " ".join(raw.get("description", []))
            if _DEPRECATED_RE.search(description):
                notes[(name, "")] = description
            for f in raw.get("fields", []):
                if _DEPRECATED_RE.search(f["description"]):
                    notes[(name, f["name"])] = f["description"]
    return notes


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
