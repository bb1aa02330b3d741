"""Dialog widgets: translated texts (French msgids), lists of choices, alert-or-reply."""

from __future__ import annotations

import operator
from typing import Any

from aiogram.enums import ContentType
from aiogram.types import CallbackQuery, Message
from aiogram_dialog.api.protocols import DialogManager
from aiogram_dialog.widgets.common import WhenCondition
from aiogram_dialog.widgets.input import MessageInput
from aiogram_dialog.widgets.kbd import Select
from aiogram_dialog.widgets.text import Format, Text

from bot.telegram.filters import IsText
from bot.ui.deps import translator_of


class T(Text):
    """gettext(msgid).format_map(data): like Format, but through the catalogs."""

    def __init__(self, msgid: str, when: WhenCondition = None) -> None:
        super().__init__(when=when)
        self.msgid = msgid

    async def _render_text(self, data: dict[str, Any], manager: DialogManager) -> str:
        translated = translator_of(manager).gettext(self.msgid)
        return translated.format_map(data) if data else translated


async def tell(event: CallbackQuery | Message, text: str) -> None:
    """An alert on a button press, a plain reply to a message."""
    if isinstance(event, CallbackQuery):
        await event.answer(text, show_alert=True)
    else:
        await event.answer(text)


def Choices(widget_id: str, items: str, on_click: Any, label: str = "{item[1]}") -> Select[str]:
    """Buttons from a getter's list of (id, label) pairs: the pattern every list here uses."""
    return Select(
        Format(label),
        id=widget_id,
        item_id_getter=operator.itemgetter(0),
        items=items,
        on_click=on_click,
    )


def TextInput(on_text: Any, on_other: Any) -> tuple[MessageInput, MessageInput]:
    """A window's message inputs: a text goes to `on_text`; anything else (a photo, a
    sticker…) to `on_other`, which says politely that a text is expected."""
    return (
        MessageInput(on_text, filter=IsText()),  # content_types would be a magic filter
        MessageInput(on_other, content_types=[ContentType.ANY]),
    )


def Stamped(text: Text, widget_id: str, on_click: Any, when: WhenCondition = None) -> Select[str]:
    """A button carrying the stamp of the screen it was drawn on (the getter's `stamp`: a list
    of one): `on_click` gets it as the item id, to tell a tap on this screen from a late one."""
    return Select(
        text, id=widget_id, item_id_getter=str, items="stamp", on_click=on_click, when=when
    )
