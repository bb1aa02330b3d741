"""The bot's messages: the checks and bookkeeping that sending and editing share."""

from __future__ import annotations

import time
from typing import Any

from .html import render_text
from .model import _BLOCKED, ApiError, MediaSend, TranscriptEntry, _Chat, _Req, _shallow
from .state import EmulatorState


class MessagesMixin(EmulatorState):
    """The target chat's checks, and the transcript entries of sent and edited messages."""

    def _check_writable(self, chat: _Chat) -> None:
        user = chat.user
        if user is None:
            return
        if user.blocked:
            raise ApiError(403, _BLOCKED)
        if not user.started:
            raise ApiError(403, "Forbidden: bot can't initiate conversation with a user")

    def _target(self, req: _Req) -> _Chat:
        chat = self._chat_for(req.params.get("chat_id"))
        self._check_writable(chat)
        return chat

    def _text(self, req: _Req, name: str) -> tuple[str, list[dict[str, Any]]]:
        value = req.params.get(name)
        if value is None:
            return "", []
        rendered = req.rendered.get(name)
        if rendered is None:
            rendered = render_text(value, req.params.get("parse_mode"))
        text, entities = rendered
        explicit = req.params.get("entities" if name == "text" else f"{name}_entities")
        return text, (explicit if explicit else entities)

    def _reply_target(self, chat: _Chat, params: dict[str, Any]) -> dict[str, Any] | None:
        rp = params.get("reply_parameters")
        if not rp and "reply_to_message_id" in params:  # the legacy form
            rp = {
                "message_id": params["reply_to_message_id"],
                "allow_sending_without_reply": params.get("allow_sending_without_reply", False),
            }
        if not rp:
            return None
        source = self._chats.get(rp.get("chat_id", chat.id)) if "chat_id" in rp else chat
        entry = source.messages.get(rp["message_id"]) if source else None
        if entry is None or entry.deleted:
            if rp.get("allow_sending_without_reply"):
                return None
            raise ApiError(400, "Bad Request: message to be replied not found")
        return _shallow(entry.message)

    def _bot_message(
        self,
        chat: _Chat,
        req: _Req,
        *,
        kind: str,
        text: str,
        entities: list[dict[str, Any]],
        extra: dict[str, Any] | None = None,
        media: MediaSend | None = None,
        reply_to: dict[str, Any] | None = None,
        deliver: bool = True,
    ) -> TranscriptEntry:
        markup = req.params.get("reply_markup")
        inline = markup if isinstance(markup, dict) and "inline_keyboard" in markup else None
        msg: dict[str, Any] = {
            "message_id": chat.new_message_id(),
            "from": self.bot_user,
            "chat": chat.obj,
            "date": int(time.time()),
        }
        if reply_to is not None:
            msg["reply_to_message"] = reply_to
        if extra:
            msg.update(extra)
        _set_text(msg, kind, text, entities)
        if inline is not None:
            msg["reply_markup"] = inline  # only inline keyboards are part of a Message
        if isinstance(markup, dict):
            if "keyboard" in markup:
                chat.reply_keyboard = [[b["text"] for b in row] for row in markup["keyboard"]]
            elif markup.get("remove_keyboard"):
                chat.reply_keyboard = None
        entry = TranscriptEntry(
            chat_id=chat.id,
            message_id=msg["message_id"],
            direction="bot",
            kind=kind,
            text=_shown(kind, text),
            buttons=_button_rows(inline),
            message=msg,
            sender_id=self.bot_id,
            entities=entities,
            markup=inline,
            reply_keyboard=chat.reply_keyboard if _has_keyboard(markup) else None,
            media=media,
        )
        self._add_entry(chat, entry)
        if deliver:
            chat.delivered.append(entry)
        return entry

    def _count_delivery(self, chat: _Chat) -> None:
        self._delivery_counts[chat.id] = self._delivery_counts.get(chat.id, 0) + 1

    def _editable(self, req: _Req) -> tuple[_Chat, TranscriptEntry] | None:
        p = req.params
        if "inline_message_id" in p:
            return None
        if "chat_id" not in p or "message_id" not in p:
            raise ApiError(400, "Bad Request: message identifier is not specified")
        chat = self._target(req)
        entry = chat.messages.get(p["message_id"])
        if entry is None or entry.deleted:
            raise ApiError(400, "Bad Request: message to edit not found")
        if entry.direction != "bot":
            raise ApiError(400, "Bad Request: message can't be edited")
        return chat, entry

    def _apply_edit(
        self,
        chat: _Chat,
        entry: TranscriptEntry,
        *,
        kind: str,
        text: str,
        entities: list[dict[str, Any]],
        inline: dict[str, Any] | None,
        extra: dict[str, Any] | None = None,
        media: MediaSend | None = None,
    ) -> dict[str, Any]:
        msg = dict(entry.message)
        for key in ("text", "entities", "caption", "caption_entities", "reply_markup"):
            msg.pop(key, None)
        if extra:
            for key in ("photo", "document", "video", "animation", "audio"):
                msg.pop(key, None)
            msg.update(extra)
        _set_text(msg, kind, text, entities)
        if inline is not None:
            msg["reply_markup"] = inline
        msg["edit_date"] = int(time.time())
        entry.message = msg
        entry.kind = kind
        entry.text = _shown(kind, text)
        entry.entities = entities
        entry.markup = inline
        entry.buttons = _button_rows(inline)
        if media is not None:
            entry.media = media
        entry.edited = True
        entry.edit_count += 1
        self._touch(chat, entry)
        return msg


def _set_text(msg: dict[str, Any], kind: str, text: str, entities: list[dict[str, Any]]) -> None:
    if kind == "text":
        msg["text"] = text
        if entities:
            msg["entities"] = entities
    elif text:
        msg["caption"] = text
        if entities:
            msg["caption_entities"] = entities


def _shown(kind: str, text: str) -> str:
    return text if kind == "text" or text else f"[{kind}]"


def _has_keyboard(markup: Any) -> bool:
    return isinstance(markup, dict) and "keyboard" in markup


def _inline(params: dict[str, Any]) -> dict[str, Any] | None:
    markup = params.get("reply_markup")
    return markup if isinstance(markup, dict) and "inline_keyboard" in markup else None


def _button_rows(inline: dict[str, Any] | None) -> list[list[str]]:
    if not inline:
        return []
    return [[b.get("text", "") for b in row] for row in inline.get("inline_keyboard", [])]
