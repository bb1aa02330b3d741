"""The playground: a Telegram Bot API emulator (emulator/), used by the end-to-end
tests and by `consultbot playground` (runner.py, web.py and the page in static/).

async with BotAPIEmulator() as emu:            # 127.0.0.1, random port
    alice = emu.add_user(1001, "Alice")
    # start the bot with TELEGRAM_API_URL=emu.base_url, then:
    await alice.send("/start")
    await alice.wait_for_message("Bienvenue")
    answer = await alice.click("Commencer")
    emu.assert_no_violations()
"""

from .emulator import (
    ApiError,
    BotAPIEmulator,
    BotApiSpec,
    Call,
    CallbackAnswer,
    Click,
    Fault,
    Hold,
    HtmlParseError,
    LimitViolation,
    MediaSend,
    SimUser,
    TranscriptEntry,
    UploadedFile,
    Violation,
    parse_html,
)

__all__ = [
    "ApiError",
    "BotAPIEmulator",
    "BotApiSpec",
    "Call",
    "CallbackAnswer",
    "Click",
    "Fault",
    "Hold",
    "HtmlParseError",
    "LimitViolation",
    "MediaSend",
    "SimUser",
    "TranscriptEntry",
    "UploadedFile",
    "Violation",
    "parse_html",
]
