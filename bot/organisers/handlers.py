"""Organisers' and members' read-only commands: /status (admins), /results."""

from __future__ import annotations

from aiogram import Router
from aiogram.filters import Command
from aiogram.types import Message
from aiogram_dialog import DialogManager, StartMode
from sqlalchemy.ext.asyncio import AsyncSession

from bot.communes.dialog import CommuneStart
from bot.consultation import PhaseKind
from bot.context import AppContext
from bot.i18n import Translator
from bot.organisers.audit import CHAT_ENTRIES, audit_lines, html_lines
from bot.organisers.status import status_report
from bot.results.charts import ChartCache
from bot.results.report_handlers import report_keyboard
from bot.results.service import ResultsCache
from bot.results.view import may_see_results, send_results
from bot.services import UpdateServices
from bot.telegram.filters import PrivateChat
from bot.text_budget import pack_lines
from bot.ui.presenters import when
from bot.ui.states import Announce, CommunePick
from storage.repositories.members import MemberRecord


async def status(
    message: Message, app: AppContext, translator: Translator, session: AsyncSession, lang: str
) -> None:
    if message.from_user is None or not app.is_admin(message.from_user.id):
        await message.answer(translator.gettext("Cette commande est réservée aux organisateurs."))
        return
    await message.answer(await status_report(session, app, translator, lang))


async def announce(
    message: Message, app: AppContext, translator: Translator, dialog_manager: DialogManager
) -> None:
    if message.from_user is None or not app.is_admin(message.from_user.id):
        await message.answer(translator.gettext("Cette commande est réservée aux organisateurs."))
        return
    await dialog_manager.start(Announce.audience, mode=StartMode.RESET_STACK)


async def results(
    message: Message,
    app: AppContext,
    translator: Translator,
    charts: ChartCache,
    results_cache: ResultsCache,
    session: AsyncSession,
    lang: str,
    member: MemberRecord | None,
    services: UpdateServices,
    dialog_manager: DialogManager,
) -> None:
    if not may_see_results(app, member):
        phase = app.consultation.phase(PhaseKind.RESULTS)
        text = translator.gettext("Les résultats seront publiés le {date}.").format(
            date=when(phase.starts, app.consultation, lang, time=True) if phase else "—"
        )
        await message.answer(text)
        return
    # An official's results depend on their commune: asked first, once, if never given.
    if member is not None and await services.communes.official_needs_asking(member, app.clock()):
        await dialog_manager.start(
            CommunePick.ask, data=CommuneStart(then_results=True).dump(), mode=StartMode.RESET_STACK
        )
        return
    await send_results(
        message, app, charts, results_cache, translator, session, lang, member, services.commentary
    )
    if member is not None and app.is_admin(member.id):
        offer = translator.gettext("Le document à présenter au collège ou au conseil :")
        if app.communes:  # a commune's report: asked by name or postal code, not by 600 buttons
            offer = translator.gettext(
                "Le document à présenter au collège ou au conseil. Pour les chiffres d’une "
                "commune à côté de ceux du réseau : <code>/report {lang}</code> suivi de son "
                "code postal ou de son nom."
            ).format(lang=lang)
        await message.answer(offer, reply_markup=report_keyboard(lang, translator))


async def audit_log(
    message: Message, app: AppContext, translator: Translator, session: AsyncSession
) -> None:
    _ = translator.gettext
    if message.from_user is None or not app.is_admin(message.from_user.id):
        await message.answer(_("Cette commande est réservée aux organisateurs."))
        return
    lines = await audit_lines(session, app.consultation, None, CHAT_ENTRIES)
    if not lines:
        await message.answer(_("Le journal est vide."))
        return
    header = _(
        "<b>Journal</b> ({n} dernières entrées ; tout : <code>consultbot audit</code>)"
    ).format(n=len(lines))
    for part in pack_lines(header, html_lines(lines)):
        await message.answer(part)


def build_router() -> Router:
    r = Router(name="admin")
    r.message.filter(PrivateChat())
    r.message.register(status, Command("status"))
    r.message.register(announce, Command("announce"))
    r.message.register(results, Command("results"))
    r.message.register(audit_log, Command("audit"))
    return r
