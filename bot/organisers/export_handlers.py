"""/export for organisers: the export files, sent as documents in the private chat."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import tempfile
from datetime import datetime
from pathlib import Path

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import FSInputFile, Message
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.context import AppContext
from bot.i18n import Translator
from bot.organisers.alerts import ALERT_TOPIC
from bot.organisers.export import ALL_KINDS, Actor, ExportFormat, ExportKind
from bot.organisers.export_worker import ExportRunner
from bot.telegram.filters import PrivateChat
from storage.repositories.outbox import NewDelivery, OutboxRepository

log = logging.getLogger(__name__)


def parse_arguments(args: str | None) -> tuple[tuple[ExportKind, ...], ExportFormat] | None:
    """'/export [responses|ideas|comments|results|all] [csv|xlsx]', in any order; None if bad."""
    kinds: tuple[ExportKind, ...] = ALL_KINDS
    fmt = ExportFormat.XLSX  # one workbook: the easiest to open on a phone
    for word in (args or "").lower().split():
        if word in ExportFormat.__members__.values():
            fmt = ExportFormat(word)
        elif word in ExportKind.__members__.values():
            kinds = (ExportKind(word),)
        elif word != "all":
            return None
    return kinds, fmt


async def export_command(
    message: Message,
    command: CommandObject,
    app: AppContext,
    translator: Translator,
    exports: ExportRunner,
    sessionmaker: async_sessionmaker[AsyncSession],
    lang: str,
) -> None:
    _ = translator.gettext
    if message.from_user is None or not app.is_admin(message.from_user.id):
        await message.answer(_("Cette commande est réservée aux organisateurs."))
        return
    parsed = parse_arguments(command.args)
    if parsed is None:
        await message.answer(
            _(
                "Je n’ai pas compris. Écrivez par exemple <code>/export</code>, "
                "<code>/export csv</code> ou <code>/export ideas xlsx</code> "
                "(responses, ideas, comments, results ; csv ou xlsx)."
            )
        )
        return
    kinds, fmt = parsed
    owner = message.from_user.id
    if exports.busy(owner):
        await message.answer(
            _(
                "Un export est déjà en cours : ses fichiers arrivent dans ce chat dès qu’ils sont prêts."
            )
        )
        return
    await message.answer(
        _("⏳ Export en cours : les fichiers arrivent dans ce chat dès qu’ils sont prêts.")
    )
    who = Actor(owner, message.from_user.full_name)
    delivery = _deliver(message, app, translator, exports, kinds, fmt, lang, who, sessionmaker)
    exports.start(owner, delivery)


async def _deliver(
    message: Message,
    app: AppContext,
    translator: Translator,
    exports: ExportRunner,
    kinds: tuple[ExportKind, ...],
    fmt: ExportFormat,
    lang: str,
    who: Actor,
    sessionmaker: async_sessionmaker[AsyncSession],
) -> None:
    """The export and its files, beside the organiser's next updates (ExportRunner.start)."""
    _ = translator.gettext
    started = app.clock()
    # A stop may cut the export short while the worker still writes here (until it is ended).
    folder = tempfile.TemporaryDirectory(prefix="consultbot-export-", ignore_cleanup_errors=True)
    with translator.use(lang), folder as tmp:
        try:
            # Written by the export worker (a process), the files are then read in chunks as
            # they are sent: nothing of it runs on the event loop.
            paths = await exports.export(
                app.settings.database_url,
                app.consultation,
                kinds,
                fmt,
                Path(tmp),
                lang,
                who,
                started,
            )
            for path in paths:
                await message.answer_document(FSInputFile(path, filename=path.name))
        except asyncio.CancelledError:
            # The process is stopping (ExportRunner.stop): the organiser was told the files
            # were coming; the outbox tells them, once the bot is back, it was cut short.
            text = _(
                "⚠️ Votre export a été interrompu par un redémarrage du bot : des fichiers "
                "peuvent manquer. Envoyez /export à nouveau."
            )
            await _leave_word(sessionmaker, app, who, started, text)
            raise
        except Exception:
            log.exception("the export for %s failed", who.id)
            with contextlib.suppress(Exception):  # Telegram itself may be what failed
                await message.answer(
                    _(
                        "L’export a échoué. Réessayez dans un moment ; si cela se reproduit, "
                        "les journaux du bot disent pourquoi."
                    )
                )
            return
        await message.answer(
            _(
                "Export terminé : réponses pseudonymisées (un numéro par répondant), heures de {tz}."
            ).format(tz=app.consultation.timezone)
        )


async def _leave_word(
    sessionmaker: async_sessionmaker[AsyncSession],
    app: AppContext,
    who: Actor,
    started: datetime,
    text: str,
) -> None:
    """A notice in the outbox (durable: sent by this instance's successor, or another)."""
    key = f"{app.consultation.id}:export-interrupted:{who.id}:{started}"[:160]
    try:
        async with sessionmaker() as session:
            notice = NewDelivery(key, ALERT_TOPIC, who.id, text=text)
            await OutboxRepository(session).enqueue([notice], app.clock())
            await session.commit()
    except Exception:
        log.exception("could not tell %s their export was interrupted", who.id)


def build_router() -> Router:
    r = Router(name="export")
    r.message.filter(PrivateChat())
    r.message.register(export_command, Command("export"))
    return r
