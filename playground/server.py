"""The Bot API emulator; its code now lives in playground/emulator/ (this module re-exports it)."""

from .emulator import (
    ApiError,
    BotAPIEmulator,
    Call,
    CallbackAnswer,
    Click,
    Fault,
    FileInfo,
    LimitViolation,
    MediaSend,
    RateLimits,
    SimUser,
    TranscriptEntry,
    Violation,
    WebhookConfig,
)

__all__ = [
    "ApiError",
    "BotAPIEmulator",
    "Call",
    "CallbackAnswer",
    "Click",
    "Fault",
    "FileInfo",
    "LimitViolation",
    "MediaSend",
    "RateLimits",
    "SimUser",
    "TranscriptEntry",
    "Violation",
    "WebhookConfig",
]
