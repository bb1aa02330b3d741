"""Every screen in the member's language: a tour of every dialog window (and of the messages
the commands send) in each language, failing on a word of another language.

Each window of each dialog is opened directly (a test-only `/goto State` command), then the
survey is walked through every question, ideas are proposed, opened, commented, and the
organisers' commands run, so getters render their real content."""

from __future__ import annotations

import itertools
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest
from aiogram import Router
from aiogram.filters import Command, CommandObject
from aiogram.fsm.state import State, StatesGroup
from aiogram.methods import SendMediaGroup, SendPhoto, TelegramMethod
from aiogram.types import Chat, Message, PhotoSize
from aiogram_dialog import DialogManager, StartMode
from aiogram_dialog.test_tools import BotClient
from aiogram_dialog.test_tools.keyboard import InlineButtonDataLocator

from bot.consultation import Question
from bot.i18n import LANGUAGE_NAMES
from bot.ui import states
from storage.repositories.ideas import IdeaRepository
from storage.repositories.members import MemberRepository
from storage.repositories.tallies import free_text_answers
from tests.support import answer_survey, seed_answers
from tests.test_dialogs import NOW, Harness, RecordingBot, harness  # noqa: F401

ADMIN = 1  # in the harness's ADMIN_IDS: sees every screen, the organisers' too
STATES: list[State] = [
    s
    for group in vars(states).values()
    if isinstance(group, type) and issubclass(group, StatesGroup) and group is not StatesGroup
    for s in group.__all_states__
]
# Words that only French writes (never Dutch or English), and the reverse.
FRENCH = re.compile(
    r"\b(le|la|les|des|du|une|votre|vos|vous|nous|et|est|pour|avec|sur|aux|dans|"
    r"réponses?|Touchez|Suivant|Retour|idées?|sondage|Résultats|Envoyer|Langue|Aide|Statut|"
    r"Raison|Valider|Continuer|Proposer|Soutenir|Signaler|Annuler|Commenter|Répondre|Projets|"
    r"soutiens?|répondants?|personnes?|modérateur|néerlandais|anglais|n°)\b"
)
NOT_FRENCH = re.compile(
    r"\b(the|your|you|and|with|answers?|Next|Back|Tap|het|een|uw|van|niet|voor|Volgende|"
    r"Terug|antwoorden?|ideeën|Tik|steun|Dutch|English|Engels|Nederlands)\b"
)
# User content typed during the tour: in no language.
TYPED = ("Zyx qwv 42", "Qwv zyx wvq 17 zyx.", "Zyx wvq")
# Shown to members whose language is not known yet: in every language on purpose.
MULTILINGUAL = ("Choisissez votre langue · Kies uw taal · Choose your language",)


class PhotoBot(RecordingBot):
    """RecordingBot that also answers the results' albums and photos."""

    def __init__(self) -> None:
        super().__init__()
        self.file_ids = itertools.count(1)

    def _photo(self, chat_id: int, caption: str | None) -> Message:
        file_id = f"AgAC{next(self.file_ids)}"
        return Message(
            message_id=next(self._ids),
            date=datetime.now(UTC),
            chat=Chat(id=chat_id, type="private"),
            caption=caption,
            photo=[PhotoSize(file_id=file_id, file_unique_id=file_id, width=9, height=9)],
        )

    async def __call__(
        self, method: TelegramMethod[Any], request_timeout: int | None = None
    ) -> Any:
        if isinstance(method, SendMediaGroup):
            self.calls.append(method)
            return [self._photo(int(method.chat_id), m.caption) for m in method.media]
        if isinstance(method, SendPhoto):
            self.calls.append(method)
            return self._photo(int(method.chat_id), method.caption)
        return await super().__call__(method, request_timeout)


def goto_router() -> Router:
    """`/goto Group.state [idea]`: opens any window, as a stale or resumed dialog would."""
    router = Router(name="test-goto")
    by_name = {s.state: s for s in STATES}

    @router.message(Command("goto"))
    async def goto(message: Message, command: CommandObject, dialog_manager: DialogManager) -> None:
        name, _, idea = (command.args or "").partition(" ")
        data = {"idea": int(idea)} if idea else None
        await dialog_manager.start(by_name[name], data=data, mode=StartMode.RESET_STACK)

    return router


class Tour:
    """Everything a member read: screens (text and buttons), messages, alerts."""

    def __init__(self, h: Harness, lang: str) -> None:
        self.h = h
        self.lang = lang
        self.screens: list[tuple[str, str]] = []
        dp = h.dispatcher()
        router = goto_router()
        dp.include_router(router)
        dp.sub_routers.remove(router)  # before the fallback router that answers any text
        dp.sub_routers.insert(0, router)
        self.client: BotClient = h.client(user_id=ADMIN, language=lang, dp=dp)
        self.seen_calls = 0

    def record(self, where: str) -> None:
        last = self.h.last()
        buttons = [
            b.text
            for row in (last.reply_markup.inline_keyboard if last.reply_markup else [])
            for b in row
        ]
        self.screens.append((f"{where} (screen)", "\n".join([last.text or "", *buttons])))
        for call in self.h.bot.calls[self.seen_calls :]:
            text = getattr(call, "text", None) or getattr(call, "caption", None)
            if isinstance(call, SendMediaGroup):
                text = "\n".join(m.caption or "" for m in call.media)
            if text:
                self.screens.append((f"{where} ({type(call).__name__})", text))
        self.seen_calls = len(self.h.bot.calls)

    async def send(self, text: str, where: str) -> None:
        await self.client.send(text)
        self.record(where)

    async def press(self, widget: str, where: str, item: str = ".*") -> bool:
        """Press the button of this widget id (a Select's item: its id matches the pattern
        `item`); False if absent."""
        locator = InlineButtonDataLocator(rf".*\x1d{re.escape(widget)}(:{item})?")
        if locator.find_button(self.h.last()) is None:
            return False
        await self.client.click(self.h.last(), locator)
        self.record(where)
        return True


async def walk_the_survey(tour: Tour) -> None:
    c = tour.h.app.consultation
    for _ in range(len(c.questions)):
        text = tour.h.last().text or ""
        if not re.search(r"\d+ / \d+", text.split("\n", 1)[0]):
            return  # the review (its lines quote the questions too), not a question's screen
        question = next((q for q in c.questions if c.text(q.text, tour.lang) in text), None)
        if question is None:
            return
        option = "yes" if question.id == "rehab_priority" else question.options[0].id
        assert await tour.press("o", question.id, rf"\d+\+{option}")  # select this option
        if question.kind == "multi":
            await tour.press("next", f"{question.id}: next")


async def take_the_tour(h: Harness, lang: str) -> Tour:
    tour = Tour(h, lang)
    # While the survey is open.
    await tour.send("/start", "menu")
    for state in STATES:
        await tour.send(f"/goto {state.state}", state.state)
    await tour.send("/goto Survey:question", "survey")
    await walk_the_survey(tour)
    await tour.press("submit", "submitted")
    await tour.send("/start", "menu")
    await tour.press("hlp", "help")
    await tour.send("/mydata", "mydata")
    await tour.send("/status", "status")
    await tour.send("/results", "results preview")
    await tour.send("/announce", "announce")
    await tour.press("a", "announce: audience")
    await tour.send(TYPED[0], "announce: confirm")

    # The ideas phase.
    h.clock.now = NOW + timedelta(days=15)
    async with h.services.sessionmaker() as session:
        other, _ = await MemberRepository(session).get_or_create(50, "Zoé")
        repo = IdeaRepository(session)
        c = h.app.consultation
        approved = await repo.create(c.id, "inclusion", ADMIN, "Anne", TYPED[0], TYPED[1], NOW)
        approved.status = "approved"
        approved.supports = 1
        rejected = await repo.create(c.id, "nuisances", ADMIN, "Anne", TYPED[2], TYPED[1], NOW)
        rejected.status = "rejected"
        rejected.reject_reason = "duplicate"
        await repo.create(c.id, "strategy", other.id, "Zoé", TYPED[2], TYPED[1], NOW)
        await session.commit()
        approved_id, rejected_id = approved.id, rejected.id
    await tour.send("/start", "menu (ideas)")
    await tour.press("res", "results")
    await tour.send("/goto Ideas:projects", "ideas")
    await tour.press("p:inclusion", "project")
    await tour.press("top", "project: most supported")
    await tour.press("new_here", "submit: title")
    await tour.send(TYPED[0], "submit: text")
    await tour.send(TYPED[1], "submit: preview")
    await tour.send(f"/goto Ideas:idea {approved_id}", "idea")
    await tour.press("sup", "idea: supported")
    await tour.press("com", "comment")
    await tour.send(TYPED[2], "idea: commented")
    await tour.press("rep", "reply: pick")
    await tour.press("rt", "reply: write")
    await tour.send(f"/goto Ideas:idea {approved_id}", "idea")
    await tour.press("rpt", "report: pick")
    await tour.press("ri", "report: idea")
    await tour.send("/goto MyIdeas:ideas", "my ideas")
    await tour.press(f"m:{approved_id}", "my idea: approved")
    await tour.send("/goto MyIdeas:ideas", "my ideas")
    await tour.press(f"m:{rejected_id}", "my idea: rejected")
    await tour.send("/pending", "pending")
    await tour.send("/goto LanguagePick:choose", "language")
    return tour


def offending(tour: Tour, words: re.Pattern[str]) -> list[str]:
    bad = []
    for where, text in tour.screens:
        plain = re.sub(r"<[^>]+>|https?://\S+", " ", text)
        for typed in (*TYPED, *MULTILINGUAL, *LANGUAGE_NAMES.values()):
            plain = plain.replace(typed, " ")
        found = sorted(set(words.findall(plain)))
        if found:
            bad.append(f"{where}: {found}\n    {plain[:300]!r}")
    return bad


@pytest.mark.parametrize("lang", ["nl", "en"])
async def test_every_screen_in_dutch_and_english_has_no_french(
    harness: Harness,  # noqa: F811
    lang: str,
) -> None:
    harness.bot = PhotoBot()
    tour = await take_the_tour(harness, lang)
    screens = {where for where, _ in tour.screens}
    # The tour saw every window and the content that matters.
    assert len(tour.screens) > 60 and {s.state for s in STATES} <= {
        w.split(" ")[0] for w in screens
    }
    texts = "\n".join(text for _, text in tour.screens)
    c = harness.app.consultation
    for q in c.questions:
        assert c.text(q.text, lang) in texts, q.id
    bad = offending(tour, FRENCH)
    assert not bad, "\n".join(bad)


async def test_every_screen_in_french_has_no_dutch_or_english(
    harness: Harness,  # noqa: F811
) -> None:
    harness.bot = PhotoBot()
    tour = await take_the_tour(harness, "fr")
    assert len(tour.screens) > 60
    bad = offending(tour, NOT_FRENCH)
    assert not bad, "\n".join(bad)


def test_the_word_lists_catch_the_other_language() -> None:
    """The lists are not empty sieves: the old survey hint and its translations are caught."""
    assert FRENCH.findall("Touchez une ou plusieurs réponses, puis « Suivant ».")
    assert NOT_FRENCH.findall("Tap one or more answers, then “Next”.")
    assert NOT_FRENCH.findall("Tik op een of meer antwoorden en daarna op ‘Volgende’.")


@pytest.mark.parametrize(
    ("lang", "language", "role"),
    [("fr", "Langue : français", "ambassadeur"), ("en", "Language: English", "ambassador")],
)
async def test_mydata_names_the_language_and_roles_in_words(
    harness: Harness,  # noqa: F811
    lang: str,
    language: str,
    role: str,
) -> None:
    client = harness.client(user_id=31, language=lang)
    await client.send("/start")
    await client.send("/mydata")
    data = harness.bot.texts()[-1]
    assert language in data, data
    roles = next(line for line in data.split("\n") if "ambassad" in line)
    assert roles.endswith(role), roles


async def test_results_show_free_text_answers_to_organisers_only(
    harness: Harness,  # noqa: F811
) -> None:
    h = harness
    h.bot = PhotoBot()
    c = h.app.consultation
    remarks = Question(
        id="remarks",
        kind="text",
        text={"fr": "Une remarque ?", "nl": "Een opmerking?", "en": "A remark?"},
        min=0,
    )
    h.app.consultation = c = c.model_copy(update={"questions": [*c.questions, remarks]})
    async with h.services.sessionmaker() as session:
        for i in range(5):
            await MemberRepository(session).get_or_create(200 + i, f"m{i}")
            remark = f"Remarque {i}" if i != 2 else ""
            answers = {**seed_answers()[i], "remarks": remark}
            await answer_survey(session, c, 200 + i, answers, NOW + timedelta(minutes=i))
        assert len(await free_text_answers(session, c.id, ["remarks"])) == 4
    admin = h.client(user_id=ADMIN, language="en")
    await admin.send("/results")
    block = next(t for t in h.bot.texts() if t.startswith("🔒"))  # before the report's offer
    assert block.startswith("🔒 <b>Free-text answers</b>"), block
    assert "4 free-text answers" in block
    # The latest few, newest first (the one left empty does not count).
    assert block.index("Remarque 4") < block.index("Remarque 3") < block.index("Remarque 1")
    assert "Remarque 0" not in block
    # A member, once the results are published, sees the counts but no free text.
    h.clock.now = NOW + timedelta(days=10, hours=12)
    member = h.client(user_id=7, language="en", dp=admin.dp)
    await member.send("/start")
    sent = len(h.bot.texts())
    await member.send("/results")
    assert h.bot.texts()[sent:], "no results for the member"
    assert not any("Remarque" in text for text in h.bot.texts()[sent:])
