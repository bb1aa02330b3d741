"""The council's report in Telegram, for organisers: `/report [fr|nl|en] [commune]` and the
button under `/results`; the PDF arrives as a document, drawn off the event loop.

A report already drawn for the same language, commune, counts and day is sent again by the
file_id Telegram gave it: a second tap costs one request, not a second drawing.
"""

from __future__ import annotations

from collections import OrderedDict
from dataclasses import dataclass, field

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.filters.callback_data import CallbackData
from aiogram.types import (
    BufferedInputFile,
    CallbackQuery,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    Message,
)
from sqlalchemy.ext.asyncio import AsyncSession

from bot.context import AppContext
from bot.i18n import Translator
from bot.results.report import build_report, commentary, figures, report_filename
from bot.telegram.filters import PrivateChat

REMEMBERED = 16


class ReportButton(CallbackData, prefix="rpt"):
    lang: str
    commune: str = ""  # "" for the network's report


def report_keyboard(lang: str, translator: Translator) -> InlineKeyboardMarkup:
    text = translator.gettext("📄 Rapport PDF pour le conseil", locale=lang)
    data = ReportButton(lang=lang).pack()
    return InlineKeyboardMarkup(
        inline_keyboard=[[InlineKeyboardButton(text=text, callback_data=data)]]
    )


@dataclass
class ReportSender:
    """Draws and sends reports; remembers the last few it sent (their file_ids)."""

    sent: OrderedDict[tuple[object, ...], str] = field(default_factory=OrderedDict)

    async def send(
        self,
        message: Message,
        app: AppContext,
        translator: Translator,
        session: AsyncSession,
        lang: str,
        commune: str | None,
    ) -> None:
        c = app.consultation
        now = app.clock()
        # The commune's counts too: a member moving commune changes them, not the network's.
        found = await figures(session, app, commune, lang, translator)
        key = (
            lang,
            found.fingerprint(),
            *(tuple(said) for said in await commentary(session, c, lang)),
            now.astimezone(c.tz).date(),
        )
        file_id = self.sent.get(key)
        if file_id is not None:
            await message.answer_document(file_id)
            return
        pdf = await build_report(session, app, translator, lang, commune, now, found)
        document = BufferedInputFile(pdf, filename=report_filename(c, lang, commune))
        sent = await message.answer_document(document)
        if sent.document is not None:
            self.sent[key] = sent.document.file_id
            while len(self.sent) > REMEMBERED:
                self.sent.popitem(last=False)


def parse_arguments(app: AppContext, args: str | None, lang: str) -> tuple[str, str | None] | None:
    """'/report [fr|nl|en] [commune id, postal code or name]': (language, commune); None when a
    word names no language of the consultation and no single commune."""
    words = (args or "").split()
    commune: str | None = None
    rest = []
    for word in words:
        if word.lower() in app.languages and not rest:
            lang = word.lower()
        else:
            rest.append(word)
    if rest:
        wanted = " ".join(rest)
        if app.communes.get(wanted) is not None:
            commune = wanted
        else:
            found = app.communes.search(wanted)
            if len(found.communes) != 1 or found.more:
                return None
            commune = found.communes[0].id
    return lang, commune


def build_router() -> Router:
    sender = ReportSender()
    r = Router(name="report")
    r.message.filter(PrivateChat())

    async def report_command(
        message: Message,
        command: CommandObject,
        app: AppContext,
        translator: Translator,
        session: AsyncSession,
        lang: str,
    ) -> None:
        _ = translator.gettext
        if message.from_user is None or not app.is_admin(message.from_user.id):
            await message.answer(_("Cette commande est réservée aux organisateurs."))
            return
        parsed = parse_arguments(app, command.args, lang)
        if parsed is None:
            await message.answer(
                _(
                    "Je n’ai pas compris. Écrivez par exemple <code>/report</code>, "
                    "<code>/report nl</code> ou <code>/report fr 5000</code> (une langue de la "
                    "consultation, puis une commune : son code postal ou son nom)."
                )
            )
            return
        await sender.send(message, app, translator, session, *parsed)

    async def report_button(
        query: CallbackQuery,
        callback_data: ReportButton,
        app: AppContext,
        translator: Translator,
        session: AsyncSession,
    ) -> None:
        _ = translator.gettext
        if not app.is_admin(query.from_user.id):
            await query.answer(_("Ce bouton est réservé aux organisateurs."), show_alert=True)
            return
        commune = callback_data.commune or None
        stale = callback_data.lang not in app.languages or (
            commune is not None and app.communes.get(commune) is None
        )
        if stale or not isinstance(query.message, Message):
            await query.answer(
                _("Ce bouton n’est plus valable : écrivez /report."), show_alert=True
            )
            return
        await sender.send(query.message, app, translator, session, callback_data.lang, commune)
        await query.answer(_("Le rapport est arrivé ci-dessous."))

    r.message.register(report_command, Command("report"))
    r.callback_query.register(report_button, ReportButton.filter())
    return r
