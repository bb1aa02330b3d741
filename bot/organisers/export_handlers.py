"""/export for organisers: the export files, sent as documents in the private chat."""

from __future__ import annotations

import contextlib
import logging
import tempfile
from pathlib import Path

from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.types import FSInputFile, Message

from bot.context import AppContext
from bot.i18n import Translator
from bot.organisers.export import ALL_KINDS, Actor, ExportFormat, ExportKind
from bot.organisers.export_worker import ExportRunner
from bot.telegram.filters import PrivateChat

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
    exports.start(owner, _deliver(message, app, translator, exports, kinds, fmt, lang, who))


async def _deliver(
    message: Message,
    app: AppContext,
    translator: Translator,
    exports: ExportRunner,
    kinds: tuple[ExportKind, ...],
    fmt: ExportFormat,
    lang: str,
    who: Actor,
) -> None:
    """The export and its files, beside the organiser's next updates (ExportRunner.start)."""
    _ = translator.gettext
    with translator.use(lang), tempfile.TemporaryDirectory(prefix="consultbot-export-") as tmp:
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
                app.clock(),
            )
            for path in paths:
                await message.answer_document(FSInputFile(path, filename=path.name))
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


def build_router() -> Router:
    r = Router(name="export")
    r.message.filter(PrivateChat())
    r.message.register(export_command, Command("export"))
    return r
