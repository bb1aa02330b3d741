"""Bot API methods that change or delete messages already sent."""

from __future__ import annotations

from typing import Any

from .files import FilesMixin, _check_image
from .html import render_text
from .messages import MessagesMixin, _inline
from .model import ApiError, _Req

_NOT_MODIFIED = (
    "Bad Request: message is not modified: specified new message content and reply markup "
    "are exactly the same as a current content and reply markup of the message"
)


class EditingMixin(MessagesMixin, FilesMixin):
    """editMessage* (text, caption, keyboard, media), deleteMessage(s)."""

    async def _api_editMessageText(self, req: _Req) -> Any:
        target = self._editable(req)
        if target is None:
            return True
        chat, entry = target
        if entry.kind != "text":
            raise ApiError(400, "Bad Request: there is no text in the message to edit")
        text, entities = self._text(req, "text")
        inline = _inline(req.params)
        if text == entry.text and entities == entry.entities and inline == entry.markup:
            raise ApiError(400, _NOT_MODIFIED)
        return self._apply_edit(
            chat, entry, kind="text", text=text, entities=entities, inline=inline
        )

    async def _api_editMessageCaption(self, req: _Req) -> Any:
        target = self._editable(req)
        if target is None:
            return True
        chat, entry = target
        if entry.kind == "text":
            raise ApiError(400, "Bad Request: there is no caption in the message to edit")
        caption, entities = self._text(req, "caption")
        inline = _inline(req.params)
        old = entry.message.get("caption", "")
        if caption == old and entities == entry.entities and inline == entry.markup:
            raise ApiError(400, _NOT_MODIFIED)
        return self._apply_edit(
            chat, entry, kind=entry.kind, text=caption, entities=entities, inline=inline
        )

    async def _api_editMessageReplyMarkup(self, req: _Req) -> Any:
        target = self._editable(req)
        if target is None:
            return True
        chat, entry = target
        inline = _inline(req.params)
        if inline == entry.markup:
            raise ApiError(400, _NOT_MODIFIED)
        text = entry.message.get("text", entry.message.get("caption", ""))
        return self._apply_edit(
            chat, entry, kind=entry.kind, text=text, entities=entry.entities, inline=inline
        )

    async def _api_editMessageMedia(self, req: _Req) -> Any:
        target = self._editable(req)
        if target is None:
            return True
        chat, entry = target
        item = req.params["media"]
        kind = item["type"]
        resolved = self._resolve_media(kind, item["media"], req.files)
        if kind == "photo" and resolved[2] is not None:
            _check_image(resolved[2].data)
        caption, entities = render_text(item.get("caption", ""), item.get("parse_mode"))
        inline = _inline(req.params)
        if (
            resolved[1] is not None
            and entry.media is not None
            and resolved[1].file_id == entry.media.file_id
            and caption == entry.message.get("caption", "")
            and inline == entry.markup
        ):
            raise ApiError(400, _NOT_MODIFIED)
        info, media = self._store_media(req, chat, kind, "media", resolved)
        return self._apply_edit(
            chat,
            entry,
            kind=kind,
            text=caption,
            entities=entities,
            inline=inline,
            extra=self._media_extra(kind, info),
            media=media,
        )

    async def _api_deleteMessage(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        entry = chat.messages.get(req.params["message_id"])
        if entry is None or entry.deleted:
            raise ApiError(400, "Bad Request: message to delete not found")
        entry.deleted = True
        self._next_seq()
        return True

    async def _api_deleteMessages(self, req: _Req) -> Any:
        chat = self._chat_for(req.params["chat_id"])
        for mid in req.params["message_ids"]:
            entry = chat.messages.get(mid)
            if entry is not None:
                entry.deleted = True
        self._next_seq()
        return True
