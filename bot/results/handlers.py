"""The buttons under the results summary: "📊" queues the charts (through the outbox, once per
member, language and counts), "🌐 …" shows the same summary in another language.

A button from an older message, or forged, is answered politely: the results not published
yet, a language the consultation no longer has. One whose counts changed since works with the
current ones (they are what the member wants to see).
"""

from __future__ import annotations

import contextlib

from aiogram import Bot, Router
from aiogram.exceptions import TelegramBadRequest
from aiogram.types import CallbackQuery, Message
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.delivery.doorbell import OutboxDoorbell
from bot.i18n import Translator
from bot.results.charts import ChartCache
from bot.results.delivery import (
    ResultsButton,
    charts_on_demand,
    results_keyboard,
    results_version,
    summary_texts,
)
from bot.results.tally import compute
from bot.results.view import may_see_results
from bot.services import UpdateServices
from storage.repositories.members import MemberRecord


async def results_button(
    query: CallbackQuery,
    callback_data: ResultsButton,
    bot: Bot,
    app: AppContext,
    translator: Translator,
    charts: ChartCache,
    doorbell: OutboxDoorbell,
    session: AsyncSession,
    services: UpdateServices,
    member: MemberRecord | None,
) -> None:
    _ = translator.gettext
    if not may_see_results(app, member) or member is None:
        await query.answer(_("Les résultats ne sont pas encore publiés."), show_alert=True)
        return
    lang = callback_data.lang
    if lang not in app.languages or callback_data.action not in ("c", "l"):
        await query.answer(_("Ce bouton n’est plus valable."), show_alert=True)
        return
    results = await compute(session, app.consultation)
    if callback_data.action == "c":
        queued = await charts_on_demand(session, app, charts, translator, results, member.id, lang)
        await session.commit()
        if queued:
            doorbell.ring()
        await query.answer(_("📊 Les graphiques arrivent."))
        return
    approved = await services.commentary.for_readers()
    after = services.commentary.reader_message(approved, lang) if approved else None
    texts = summary_texts(results, app.consultation, lang, translator, commentary=after)
    markup = results_keyboard(app, lang, results_version(results), translator)
    if len(texts) == 1 and isinstance(query.message, Message):
        # The same message, in the other language: nothing new piles up in the chat.
        with contextlib.suppress(TelegramBadRequest):  # "not modified": already that language
            await query.message.edit_text(texts[0], reply_markup=markup)
    else:  # too long for one message (or the old one is out of reach): sent anew
        for i, text in enumerate(texts):
            last = i == len(texts) - 1
            await bot.send_message(member.id, text, reply_markup=markup if last else None)
    await query.answer()


def build_router() -> Router:
    r = Router(name="results")
    r.callback_query.register(results_button, ResultsButton.filter())
    return r
