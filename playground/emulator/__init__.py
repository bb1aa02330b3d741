"""The Telegram Bot API emulator, one module per concern.

server.py     BotAPIEmulator: the mixins below put together, users and groups, dispatch
state.py      the emulator's state: chats, the change counter, the update queue
transport.py  the aiohttp server, long polling and webhook delivery
sending.py, editing.py, chats.py, files.py   Bot API methods by family
messages.py   what sending and editing share; limits.py: faults and rate limits
actions.py    what simulated users do (users.py: SimUser); transcripts.py: what tests read
model.py      the records; spec.py, validation.py, html.py: the Bot API description
"""

from .html import HtmlParseError, parse_html, render_text
from .model import (
    ApiError,
    Call,
    CallbackAnswer,
    Click,
    Fault,
    FileInfo,
    Hold,
    LimitViolation,
    MediaSend,
    RateLimits,
    TranscriptEntry,
    Violation,
    WebhookConfig,
)
from .server import BotAPIEmulator
from .spec import (
    BUNDLED_SPEC_PATH,
    DEFAULT_SPEC_PATH,
    LEGACY_PARAMS,
    PRIMITIVES,
    SHARED_SPEC_PATH,
    BotApiSpec,
)
from .users import SimUser
from .validation import PARSE_MODES, CallValidation, FieldError, UploadedFile

__all__ = [
    "BUNDLED_SPEC_PATH",
    "DEFAULT_SPEC_PATH",
    "LEGACY_PARAMS",
    "PARSE_MODES",
    "PRIMITIVES",
    "SHARED_SPEC_PATH",
    "ApiError",
    "BotAPIEmulator",
    "BotApiSpec",
    "Call",
    "CallValidation",
    "CallbackAnswer",
    "Click",
    "Fault",
    "FieldError",
    "FileInfo",
    "Hold",
    "HtmlParseError",
    "LimitViolation",
    "MediaSend",
    "RateLimits",
    "SimUser",
    "TranscriptEntry",
    "UploadedFile",
    "Violation",
    "WebhookConfig",
    "parse_html",
    "render_text",
]
