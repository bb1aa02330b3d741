"""The emulator's records: what it logs, what tests read, and its per-chat state."""

from __future__ import annotations

import asyncio
from collections import deque
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, NamedTuple

from .validation import UploadedFile

if TYPE_CHECKING:
    from .users import SimUser

_BLOCKED = "Forbidden: bot was blocked by the user"
_DEFAULT_FAULT_DESCRIPTIONS = {
    400: "Bad Request: injected fault",
    403: _BLOCKED,
    500: "Internal Server Error",
    502: "Bad Gateway",
}


class Violation(NamedTuple):
    method: str
    param: str
    message: str


class Call(NamedTuple):
    time: float  # time.monotonic() when the request arrived
    method: str
    params: dict[str, Any]
    response: dict[str, Any]


class LimitViolation(NamedTuple):
    time: float
    method: str
    chat_id: int
    kind: str  # "global" | "chat" | "group" | "retry_after" (sent before a 429's wait passed)
    limit: float
    retry_after: int


class MediaSend(NamedTuple):
    time: float
    method: str
    chat_id: int
    field: str
    source: str  # "upload" (bytes were sent) | "file_id" (reused) | "url"
    file_id: str
    size: int


@dataclass(slots=True)
class CallbackAnswer:
    text: str | None
    show_alert: bool
    url: str | None = None


@dataclass(eq=False, slots=True)
class Click:
    """A callback query sent by a simulated user, and the bot's answer to it."""

    query_id: str
    user_id: int
    chat_id: int
    message_id: int
    button_text: str
    callback_data: str
    seq: int
    future: asyncio.Future[CallbackAnswer]
    answer: CallbackAnswer | None = None


@dataclass(eq=False, slots=True)
class TranscriptEntry:
    """One message of a chat as the user sees it; edits update it in place."""

    chat_id: int
    message_id: int
    direction: str  # "bot" | "user"
    kind: str  # "text" | "photo" | "document" | "sticker" | ...
    text: str  # text, caption, or "[photo]"-style placeholder
    buttons: list[list[str]]  # inline keyboard, rows of button texts
    message: dict[str, Any]  # the current Message object, as the Bot API returns it
    sender_id: int
    entities: list[dict[str, Any]] = field(default_factory=list)
    markup: dict[str, Any] | None = None  # the inline keyboard markup, for clicks
    reply_keyboard: list[list[str]] | None = None
    media: MediaSend | None = None
    edited: bool = False
    edit_count: int = 0
    deleted: bool = False
    seq: int = 0  # emulator change counter at creation/last edit

    @property
    def has_caption(self) -> bool:
        return self.kind != "text" and "caption" in self.message

    def button_texts(self) -> list[str]:
        return [text for row in self.buttons for text in row]


@dataclass(slots=True)
class Fault:
    method: str | None  # None matches every method
    chat_id: int | None
    code: int
    retry_after: int
    times: int
    description: str | None
    hits: int = 0

    @property
    def remaining(self) -> int:
        return self.times - self.hits

    def matches(self, method: str, chat_id: Any) -> bool:
        return self.remaining > 0 and _targets(self.method, self.chat_id, method, chat_id)

    def response(self) -> tuple[str, dict[str, Any] | None]:
        if self.code == 429:
            desc = self.description or f"Too Many Requests: retry after {self.retry_after}"
            return desc, {"retry_after": self.retry_after}
        return self.description or _DEFAULT_FAULT_DESCRIPTIONS.get(self.code, "Error"), None


@dataclass(eq=False, slots=True)
class Hold:
    """Matching calls wait until the test releases them: Telegram slow for a chat, without
    a clock (see LimitsMixin.hold)."""

    method: str | None  # None matches every method
    chat_id: int | None
    released: asyncio.Event = field(default_factory=asyncio.Event)
    held: int = 0  # calls that waited
    dropped: bool = False  # released without running: lost on the way (e.g. the bot died)

    def matches(self, method: str, chat_id: Any) -> bool:
        return not self.released.is_set() and _targets(self.method, self.chat_id, method, chat_id)

    def release(self) -> None:
        self.released.set()

    def drop(self) -> None:
        """The calls held so far never reach the chat (answered 502 to a caller long gone)."""
        self.dropped = True
        self.released.set()


def _targets(method: str | None, chat_id: int | None, call_method: str, call_chat: Any) -> bool:
    if method is not None and method.lower() != call_method.lower():
        return False
    return chat_id is None or chat_id == call_chat


@dataclass(slots=True)
class RateLimits:
    global_per_second: float
    per_chat_per_second: float
    per_group_per_minute: float
    scale: float


@dataclass(slots=True)
class WebhookConfig:
    url: str
    secret_token: str | None
    allowed_updates: list[str] | None
    deliver: bool  # only loopback URLs are ever contacted
    max_connections: int = 40  # Telegram's default: requests open at once
    last_error_date: int | None = None
    last_error_message: str | None = None
    delivered: int = 0
    # update_id of each update the bot acknowledged (2xx), in the order of the answers;
    # (update_id, status) of each refused attempt (0: no answer, the connection failed).
    acknowledged: list[int] = field(default_factory=list)
    refused: list[tuple[int, int]] = field(default_factory=list)


@dataclass(slots=True)
class FileInfo:
    file_id: str
    file_unique_id: str
    kind: str
    size: int
    file_name: str | None = None
    mime_type: str | None = None
    width: int = 0
    height: int = 0
    data: bytes | None = None
    photo_sizes: list[dict[str, Any]] = field(default_factory=list)

    @property
    def file_path(self) -> str:
        return f"{self.kind}s/{self.file_unique_id}"


class ApiError(Exception):
    def __init__(self, code: int, description: str, parameters: dict[str, Any] | None = None):
        super().__init__(description)
        self.code = code
        self.description = description
        self.parameters = parameters


@dataclass(eq=False)
class _Chat:
    id: int
    type: str  # "private" | "group" | "supergroup"
    obj: dict[str, Any]  # the Chat object
    user: SimUser | None = None
    next_message_id: int = 1
    messages: dict[int, TranscriptEntry] = field(default_factory=dict)
    entries: list[TranscriptEntry] = field(default_factory=list)
    events: list[TranscriptEntry | Click] = field(default_factory=list)
    # (seq, entry) every time a message appears or changes, for wait_for_message
    touched: list[tuple[int, TranscriptEntry]] = field(default_factory=list)
    delivered: list[TranscriptEntry] = field(default_factory=list)
    window: deque[float] = field(default_factory=deque)  # a group's send times, for its limit
    ready_at: float = 0.0  # a private chat's debt is paid then (monotonic), for its limit
    told_until: float = 0.0  # a 429 for this chat asked to wait until then (monotonic)
    owner: int | None = None
    admins: list[int] = field(default_factory=list)
    members: set[int] = field(default_factory=set)
    bot_is_admin: bool = True
    reply_keyboard: list[list[str]] | None = None

    def new_message_id(self) -> int:
        mid = self.next_message_id
        self.next_message_id += 1
        return mid


class _Req(NamedTuple):
    method: str
    params: dict[str, Any]
    files: dict[str, UploadedFile]
    rendered: dict[str, tuple[str, list[dict[str, Any]]]]


def _shallow(message: dict[str, Any]) -> dict[str, Any]:
    # a replied-to message never carries its own reply_to_message
    return {k: v for k, v in message.items() if k != "reply_to_message"}
