"""A deliberately small survey bot: the baseline of `survey_load.py`.

Plain aiogram + aiogram-dialog, the consultation's questions, the same screens as ConsultBot
(menu, the commune asked once, one question per screen with ✅/▫️ or 🔘/⚪ options and ◀️/▶️, review with ✏️ and 📨, thanks),
dialog state and answers in memory: no database, no catalogs, no middlewares. Its buttons
toggle (a repeated tap undoes a choice): it is the yardstick, not a model.

    BOT_TOKEN=... TELEGRAM_API_URL=http://127.0.0.1:PORT python bench/baseline_bot.py FILE
"""

from __future__ import annotations

import asyncio
import logging
import operator
import os
import sys
from html import escape
from pathlib import Path
from typing import Any

REPO = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(REPO))

from aiogram import Bot, Dispatcher  # noqa: E402
from aiogram.client.default import DefaultBotProperties  # noqa: E402
from aiogram.client.session.aiohttp import AiohttpSession  # noqa: E402
from aiogram.client.telegram import TelegramAPIServer  # noqa: E402
from aiogram.enums import ContentType  # noqa: E402
from aiogram.filters import CommandStart  # noqa: E402
from aiogram.fsm.state import State, StatesGroup  # noqa: E402
from aiogram.fsm.storage.memory import MemoryStorage, SimpleEventIsolation  # noqa: E402
from aiogram.types import CallbackQuery, Message  # noqa: E402
from aiogram_dialog import Dialog, DialogManager, StartMode, Window, setup_dialogs  # noqa: E402
from aiogram_dialog.widgets.input import MessageInput  # noqa: E402
from aiogram_dialog.widgets.kbd import Button, Column, Group, Row, Select, SwitchTo  # noqa: E402
from aiogram_dialog.widgets.text import Const, Format  # noqa: E402

from bot.communes.lookup import CommuneDirectory  # noqa: E402
from bot.consultation import Consultation, Question, load_consultation  # noqa: E402


class Menu(StatesGroup):
    menu = State()


class Walk(StatesGroup):
    commune = State()
    commune_pick = State()
    question = State()
    review = State()
    done = State()


def build(consultation: Consultation) -> Dispatcher:
    c = consultation
    answers: dict[int, dict[str, list[str]]] = {}  # user id -> question id -> options
    communes: dict[int, str | None] = {}  # user id -> commune id (None: rather not say)
    directory = CommuneDirectory(c.communes, "fr")

    def visible(mine: dict[str, list[str]]) -> list[Question]:
        return [
            q
            for q in c.questions
            if q.when is None or any(o in mine.get(q.when.question, []) for o in q.when.any)
        ]

    def lang_of(manager: DialogManager) -> str:
        user = manager.event.from_user
        code = (user.language_code or "fr")[:2] if user else "fr"
        return code if code in c.languages else "fr"

    async def question_getter(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
        lang = lang_of(dialog_manager)
        mine = answers.setdefault(dialog_manager.event.from_user.id, {})
        shown = visible(mine)
        q = c.question(dialog_manager.dialog_data["q"])
        assert q is not None
        sel = dialog_manager.dialog_data.get("sel", [])
        on, off = ("🔘", "⚪") if q.kind == "single" else ("✅", "▫️")
        return {
            "progress": f"{[x.id for x in shown].index(q.id) + 1} / {len(shown)}",
            "text": escape(c.text(q.text, lang)),
            "options": [
                (o.id, f"{on if o.id in sel else off} {c.text(o.label, lang)}") for o in q.options
            ],
            "multi": q.kind == "multi",
        }

    async def on_option(cb: CallbackQuery, _: Any, manager: DialogManager, option: str) -> None:
        q = c.question(manager.dialog_data["q"])
        assert q is not None
        sel: list[str] = manager.dialog_data.get("sel", [])
        if q.kind == "single":
            manager.dialog_data["sel"] = [option]
            await advance(cb, manager)
            return
        manager.dialog_data["sel"] = [o for o in sel if o != option] + (
            [] if option in sel else [option]
        )

    async def advance(cb: CallbackQuery, manager: DialogManager) -> None:
        mine = answers.setdefault(cb.from_user.id, {})
        qid = manager.dialog_data["q"]
        if not manager.dialog_data.get("sel"):
            await cb.answer("Choisissez au moins 1 réponse.", show_alert=True)
            return
        mine[qid] = list(manager.dialog_data["sel"])
        ids = [q.id for q in visible(mine)]
        after = ids.index(qid) + 1
        if after < len(ids):
            manager.dialog_data.update(q=ids[after], sel=mine.get(ids[after], []))
        else:
            await manager.switch_to(Walk.review)

    async def on_next(cb: CallbackQuery, _: Button, manager: DialogManager) -> None:
        await advance(cb, manager)

    async def on_back(cb: CallbackQuery, _: Button, manager: DialogManager) -> None:
        mine = answers.setdefault(cb.from_user.id, {})
        ids = [q.id for q in visible(mine)]
        position = ids.index(manager.dialog_data["q"])
        if position == 0:
            await manager.done()
            return
        manager.dialog_data.update(q=ids[position - 1], sel=mine.get(ids[position - 1], []))

    async def review_getter(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
        lang = lang_of(dialog_manager)
        mine = answers.setdefault(dialog_manager.event.from_user.id, {})
        lines, edits = [], []
        for i, q in enumerate(visible(mine), start=1):
            labels = [c.text(o.label, lang) for o in q.options if o.id in mine.get(q.id, [])]
            lines.append(f"<b>{i}. {escape(c.text(q.text, lang))}</b>\n→ {', '.join(labels)}")
            edits.append((q.id, f"✏️ {i}"))
        return {"answers": "\n\n".join(lines), "edits": edits}

    async def on_edit(cb: CallbackQuery, _: Any, manager: DialogManager, qid: str) -> None:
        mine = answers.setdefault(cb.from_user.id, {})
        manager.dialog_data.update(q=qid, sel=mine.get(qid, []))
        await manager.switch_to(Walk.question)

    async def on_submit(cb: CallbackQuery, _: Button, manager: DialogManager) -> None:
        await manager.switch_to(Walk.done)

    async def on_survey(cb: CallbackQuery, _: Button, manager: DialogManager) -> None:
        mine = answers.setdefault(cb.from_user.id, {})
        first = visible(mine)[0]
        # The commune, asked once before the first question (as ConsultBot does).
        asked = cb.from_user.id in communes
        await manager.start(Walk.question if asked else Walk.commune, data={"q": first.id})

    async def on_walk_start(start_data: Any, manager: DialogManager) -> None:
        manager.dialog_data.update(q=start_data["q"], sel=[])

    async def on_commune_query(message: Message, _: Any, manager: DialogManager) -> None:
        found = directory.search(message.text or "")
        manager.dialog_data["matches"] = [(m.id, m.label("fr", "fr")) for m in found.communes]
        await manager.switch_to(Walk.commune_pick)

    async def on_commune(cb: CallbackQuery, _: Any, manager: DialogManager, commune: str) -> None:
        communes[cb.from_user.id] = commune
        await manager.switch_to(Walk.question)

    async def on_no_commune(cb: CallbackQuery, _: Button, manager: DialogManager) -> None:
        communes[cb.from_user.id] = None
        await manager.switch_to(Walk.question)

    async def matches_getter(dialog_manager: DialogManager, **_: Any) -> dict[str, Any]:
        return {"matches": dialog_manager.dialog_data.get("matches", [])}

    async def to_menu(cb: CallbackQuery, _: Button, manager: DialogManager) -> None:
        await manager.start(Menu.menu, mode=StartMode.RESET_STACK)

    async def start(message: Message, dialog_manager: DialogManager) -> None:
        await message.answer(f"<b>{escape(c.text(c.title, 'fr'))}</b>")
        await dialog_manager.start(Menu.menu, mode=StartMode.RESET_STACK)

    menu = Dialog(
        Window(
            Const("<b>Menu</b>"),
            Column(
                Button(Const("📝 Répondre au sondage"), id="sv", on_click=on_survey),
                Button(Const("🌐 Langue"), id="lng"),
                Button(Const("❓ Aide"), id="hlp"),
            ),
            state=Menu.menu,
        )
    )
    decline = Button(Const("🤐 Je préfère ne pas le dire"), id="nc", on_click=on_no_commune)
    walk = Dialog(
        Window(
            Const("📍 <b>Dans quelle commune habitez-vous ?</b>\nÉcrivez votre code postal."),
            decline,
            Button(Const("◀️ Retour"), id="cback", on_click=to_menu),
            MessageInput(on_commune_query, content_types=[ContentType.TEXT]),
            state=Walk.commune,
        ),
        Window(
            Const("📍 Choisissez votre commune :"),
            Column(
                Select(
                    Format("{item[1]}"),
                    id="c",
                    item_id_getter=operator.itemgetter(0),
                    items="matches",
                    on_click=on_commune,
                )
            ),
            SwitchTo(Const("🔎 Chercher une autre commune"), id="again", state=Walk.commune),
            decline,
            MessageInput(on_commune_query, content_types=[ContentType.TEXT]),
            state=Walk.commune_pick,
            getter=matches_getter,
        ),
        Window(
            Format("Question {progress}\n\n<b>{text}</b>"),
            Column(
                Select(
                    Format("{item[1]}"),
                    id="o",
                    item_id_getter=operator.itemgetter(0),
                    items="options",
                    on_click=on_option,
                )
            ),
            Row(
                Button(Const("◀️ Retour"), id="back", on_click=on_back),
                Button(Const("Suivant ▶️"), id="next", on_click=on_next, when="multi"),
            ),
            state=Walk.question,
            getter=question_getter,
        ),
        Window(
            Format("<b>Vos réponses</b>\n\n{answers}"),
            Group(
                Select(
                    Format("{item[1]}"),
                    id="e",
                    item_id_getter=operator.itemgetter(0),
                    items="edits",
                    on_click=on_edit,
                ),
                width=4,
            ),
            Button(Const("📨 Envoyer mes réponses"), id="submit", on_click=on_submit),
            Button(Const("🏠 Menu"), id="menu", on_click=to_menu),
            state=Walk.review,
            getter=review_getter,
        ),
        Window(
            Const("🙏 Merci ! Vos réponses sont enregistrées."),
            Button(Const("🏠 Menu"), id="menu", on_click=to_menu),
            state=Walk.done,
        ),
        on_start=on_walk_start,
    )
    # One update at a time per member, as aiogram-dialog advises (and ConsultBot does): else a
    # tap on a screen just drawn can come before its dialog's context is saved (UnknownIntent).
    dp = Dispatcher(storage=MemoryStorage(), events_isolation=SimpleEventIsolation())
    dp.message.register(start, CommandStart())
    dp.include_routers(menu, walk)
    setup_dialogs(dp)
    return dp


async def main(path: str) -> None:
    api = TelegramAPIServer.from_base(os.environ["TELEGRAM_API_URL"].rstrip("/"))
    bot = Bot(
        os.environ["BOT_TOKEN"],
        session=AiohttpSession(api=api),
        default=DefaultBotProperties(parse_mode="HTML"),
    )
    dp = build(load_consultation(path))
    await bot.delete_webhook(drop_pending_updates=False)
    await dp.start_polling(bot, allowed_updates=dp.resolve_used_update_types())


if __name__ == "__main__":
    logging.basicConfig(level=logging.WARNING)
    asyncio.run(main(sys.argv[1]))
