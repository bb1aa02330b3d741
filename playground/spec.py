"""Bot API validation; its code now lives in playground/emulator/ (this module re-exports it)."""

from .emulator import (
    BUNDLED_SPEC_PATH,
    DEFAULT_SPEC_PATH,
    LEGACY_PARAMS,
    PARSE_MODES,
    PRIMITIVES,
    SHARED_SPEC_PATH,
    BotApiSpec,
    CallValidation,
    FieldError,
    HtmlParseError,
    UploadedFile,
    parse_html,
    render_text,
)

__all__ = [
    "BUNDLED_SPEC_PATH",
    "DEFAULT_SPEC_PATH",
    "LEGACY_PARAMS",
    "PARSE_MODES",
    "PRIMITIVES",
    "SHARED_SPEC_PATH",
    "BotApiSpec",
    "CallValidation",
    "FieldError",
    "HtmlParseError",
    "UploadedFile",
    "parse_html",
    "render_text",
]
