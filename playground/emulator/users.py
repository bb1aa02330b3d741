"""Simulated Telegram users: every action produces a real update for the bot."""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

from .model import CallbackAnswer, TranscriptEntry

if TYPE_CHECKING:
    from .server import BotAPIEmulator


class SimUser:
    """A simulated Telegram user; every action produces a real update for the bot."""

    def __init__(
        self,
        emu: BotAPIEmulator,
        user_id: int,
        first_name: str,
        language_code: str | None,
        username: str | None,
        last_name: str | None,
        started: bool,
    ) -> None:
        self.emu = emu
        self.id = user_id
        self.first_name = first_name
        self.language_code = language_code
        self.username = username
        self.last_name = last_name
        self.started = started  # has the user ever opened the bot's chat?
        self.blocked = False
        self.last_action_seq = 0

    def __repr__(self) -> str:
        return f"SimUser({self.id}, {self.first_name!r})"

    @property
    def chat_id(self) -> int:
        return self.id

    def as_dict(self) -> dict[str, Any]:
        user: dict[str, Any] = {"id": self.id, "is_bot": False, "first_name": self.first_name}
        if self.last_name:
            user["last_name"] = self.last_name
        if self.username:
            user["username"] = self.username
        if self.language_code:
            user["language_code"] = self.language_code
        return user

    async def send(self, text: str, *, reply_to: int | None = None) -> dict[str, Any]:
        """A text message in the private chat with the bot."""
        return self.emu._user_message(self, self.id, text=text, reply_to=reply_to)

    async def send_in_group(
        self, chat_id: int, text: str, *, reply_to: int | None = None
    ) -> dict[str, Any]:
        return self.emu._user_message(self, chat_id, text=text, reply_to=reply_to)

    async def send_photo(self, caption: str | None = None) -> dict[str, Any]:
        info = self.emu._register_file("photo", size=24_000, width=1280, height=960)
        extra: dict[str, Any] = {"photo": info.photo_sizes}
        if caption:
            extra["caption"] = caption
        return self.emu._user_message(self, self.id, kind="photo", extra=extra, shown=caption)

    async def send_sticker(self, emoji: str = "👍") -> dict[str, Any]:
        info = self.emu._register_file("sticker", size=12_000, width=512, height=512)
        sticker = {
            "file_id": info.file_id,
            "file_unique_id": info.file_unique_id,
            "type": "regular",
            "width": 512,
            "height": 512,
            "is_animated": False,
            "is_video": False,
            "emoji": emoji,
            "file_size": info.size,
        }
        return self.emu._user_message(self, self.id, kind="sticker", extra={"sticker": sticker})

    async def send_document(
        self, file_name: str = "document.pdf", caption: str | None = None
    ) -> dict[str, Any]:
        info = self.emu._register_file(
            "document", size=50_000, file_name=file_name, mime_type="application/pdf"
        )
        extra: dict[str, Any] = {"document": self.emu._document_dict(info)}
        if caption:
            extra["caption"] = caption
        return self.emu._user_message(self, self.id, kind="document", extra=extra, shown=caption)

    async def click(
        self,
        button_text: str,
        *,
        message: int | TranscriptEntry | None = None,
        chat_id: int | None = None,
        timeout: float = 10.0,
    ) -> CallbackAnswer:
        """Press an inline button and wait until the bot answers the callback query."""
        return await self.emu._click(self, button_text, message, chat_id, timeout)

    def block_bot(self) -> None:
        self.emu._set_blocked(self, True)

    def unblock_bot(self) -> None:
        self.emu._set_blocked(self, False)

    async def wait_for_message(
        self,
        contains: str | None = None,
        timeout: float = 10.0,
    ) -> TranscriptEntry:
        """A bot message of this user's chat, new or edited since the user's last action."""
        return await self.emu.wait_for_bot_message(
            self.id, contains, since=self.last_action_seq, timeout=timeout
        )

    def transcript(self) -> list[TranscriptEntry]:
        return self.emu.transcript(self.id)

    def render_transcript(self) -> str:
        return self.emu.render_transcript(self.id)

    def last_bot_message(self) -> TranscriptEntry | None:
        return self.emu.last_bot_message(self.id)
