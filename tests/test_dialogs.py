"""Dialog tests with aiogram_dialog.test_tools: the survey clicked through by button text."""

from __future__ import annotations

import itertools
import re
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from aiogram import Dispatcher
from aiogram.methods import AnswerCallbackQuery, SendMessage, TelegramMethod
from aiogram.types import CallbackQuery, Chat, Message, Update, User
from aiogram_dialog.test_tools import BotClient, MockMessageManager
from aiogram_dialog.test_tools.bot_client import FakeBot
from aiogram_dialog.test_tools.keyboard import InlineButtonTextLocator
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.app import create_dispatcher
from bot.config import Settings
from bot.consultation import load_consultation
from bot.context import AppContext
from bot.services import AppServices, UpdateServices
from storage.db import make_engine, make_sessionmaker, upgrade_async
from storage.dialog_state.sql_storage import SQLStorage
from storage.repositories.survey import SurveyRepository
from tests.support import default_document, survey_now, with_dates, write_document

NOW = datetime(2026, 11, 30, 12, 0, tzinfo=UTC)


class RecordingBot(FakeBot):
    """FakeBot that accepts plain sends and callback answers, and remembers them."""

    def __init__(self) -> None:
        self.calls: list[TelegramMethod[Any]] = []
        self._ids = itertools.count(10_000)

    async def __call__(
        self, method: TelegramMethod[Any], request_timeout: int | None = None
    ) -> Any:
        self.calls.append(method)
        if isinstance(method, SendMessage):
            return Message(
                message_id=next(self._ids),
                date=datetime.now(UTC),
                chat=Chat(id=int(method.chat_id), type="private"),
                text=method.text,
            )
        return True

    def texts(self) -> list[str]:
        return [c.text for c in self.calls if isinstance(c, SendMessage)]

    def alerts(self) -> list[str]:
        return [c.text or "" for c in self.calls if isinstance(c, AnswerCallbackQuery) and c.text]


def button(text: str) -> InlineButtonTextLocator:
    """The button whose text is `text`, give or take an emoji or mark around it."""
    return InlineButtonTextLocator(rf"(?:\S+ )?{re.escape(text)}(?: \S+)?")


@dataclass
class Clock:
    now: datetime = NOW

    def __call__(self) -> datetime:
        return self.now


@dataclass
class Wired:
    """The configuration and the long-lived services, as bot/app.py wires them."""

    app: AppContext
    services: AppServices

    def use(self, session: AsyncSession) -> UpdateServices:
        """The use cases over `session`, as a handler gets them."""
        return UpdateServices(session, self.app, self.services)


@dataclass
class Harness(Wired):
    storage: SQLStorage
    clock: Clock
    bot: RecordingBot = field(default_factory=RecordingBot)
    messages: MockMessageManager = field(default_factory=MockMessageManager)

    def dispatcher(self) -> Dispatcher:
        return create_dispatcher(
            self.app, self.services, self.storage, message_manager=self.messages
        )

    def client(
        self, user_id: int = 7, language: str | None = "fr", dp: Dispatcher | None = None
    ) -> BotClient:
        client = BotClient(dp or self.dispatcher(), user_id=user_id, chat_id=user_id, bot=self.bot)
        client.user = User(id=user_id, is_bot=False, first_name="Anne", language_code=language)
        return client

    def last(self) -> Message:
        return self.messages.last_message()

    async def click(self, client: BotClient, text: str) -> None:
        await client.click(self.last(), button(text))

    async def answers(self, member_id: int) -> dict[str, tuple[str, ...]]:
        async with self.services.sessionmaker() as session:
            repo = SurveyRepository(session)
            response = await repo.response(self.app.consultation.id, member_id)
            if response is None:
                return {}
            return {q: a.choices for q, a in (await repo.answers(response.id)).items()}

    async def status(self, member_id: int) -> str | None:
        async with self.services.sessionmaker() as session:
            response = await SurveyRepository(session).response(self.app.consultation.id, member_id)
            return response.status if response else None


@pytest.fixture
async def harness(tmp_path: Path) -> AsyncIterator[Harness]:
    url = f"sqlite+aiosqlite:///{tmp_path / 'dialogs.db'}"
    await upgrade_async(url)
    path = write_document(tmp_path / "c.yaml", with_dates(default_document(), survey_now(NOW)))
    engine = make_engine(url)
    sessionmaker: async_sessionmaker[AsyncSession] = make_sessionmaker(engine)
    clock = Clock()
    app = AppContext(
        settings=Settings(
            bot_token=None,
            database_url=url,
            admin_ids=frozenset({1}),
            throttle_burst=10_000,
            callback_answer_deadline=60,
        ),
        consultation=load_consultation(path),
        clock=clock,
    )
    yield Harness(app, AppServices.create(sessionmaker), SQLStorage(sessionmaker), clock)
    await engine.dispose()


async def start_survey(h: Harness, client: BotClient) -> None:
    await client.send("/start")
    assert "Pour un déconfinement sécure au niveau local" in h.bot.texts()[-1]
    assert "Phase en cours" in (h.last().text or "")
    await h.click(client, "Répondre au sondage")
    if "Dans quelle commune" in (h.last().text or ""):  # asked once, before the first question
        await h.click(client, "Je préfère ne pas le dire")


async def test_first_question_requires_a_choice(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    # Five questions for everyone; the strategy axes and the rehabilitation focus are
    # asked after the answers that call for them.
    assert (h.last().text or "").startswith("Question 1 / 5")
    await h.click(client, "Suivant")
    assert h.bot.alerts()[-1] == "Choisissez au moins 1 réponse."
    assert (h.last().text or "").startswith("Question 1 / 5")
    await h.click(client, "Inclusion des personnes")
    assert "✅ Inclusion des personnes" in str(h.last().reply_markup)
    await h.click(client, "Suivant")
    assert (h.last().text or "").startswith("Question 2 / 5")
    # Saved when the member left the screen, not at the end.
    assert await h.answers(7) == {"challenges": ("inclusion",)}


async def answer_everything(
    h: Harness, client: BotClient, rehab: str, strategy: bool = True
) -> None:
    """Every question shown: the first option (and, with `strategy`, the joint strategy among
    the challenges, which asks its axes), `rehab` to rehab_priority."""
    c = h.app.consultation
    chosen: dict[str, set[str]] = {}
    for q in c.questions:
        if q.when is not None and not chosen.get(q.when.question, set()) & set(q.when.any):
            continue
        text = h.last().text or ""
        assert c.text(q.text, "fr").split(" (")[0][:30] in text, (q.id, text)
        if q.id == "rehab_priority":
            await h.click(client, rehab)
            chosen[q.id] = {"yes" if rehab == "Oui" else "no"}
            continue
        chosen[q.id] = {q.options[0].id}
        if q.kind == "single":  # a tap answers and moves on
            await h.click(client, c.text(q.options[0].label, "fr"))
            continue
        await h.click(client, c.text(q.options[0].label, "fr"))
        if q.id == "challenges" and strategy:
            await h.click(client, "Stratégie locale commune")
            chosen[q.id].add("strategy")
        await h.click(client, "Suivant")


async def test_whole_survey_with_follow_up_then_submit(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    await answer_everything(h, client, "Oui")
    review = h.last().text or ""
    assert review.startswith("<b>Vos réponses</b>")
    assert "Accompagnement des victimes" in review or "victimes" in review
    assert await h.status(7) == "draft"
    await h.click(client, "Envoyer mes réponses")
    assert (h.last().text or "").startswith("🙏 Merci")
    assert await h.status(7) == "submitted"
    answers = await h.answers(7)
    assert set(answers) == {q.id for q in h.app.consultation.questions}


async def test_changing_a_condition_drops_the_follow_up(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    await answer_everything(h, client, "Oui")
    await h.click(client, "Envoyer mes réponses")
    await h.click(client, "Menu")
    await h.click(client, "Revoir mes réponses")
    assert (h.last().text or "").startswith("<b>Vos réponses</b>")
    await h.click(client, "✏️ 6")
    assert "Question 6 / 7" in (h.last().text or "")
    await h.click(client, "Non")
    # Back on the review, the follow-up is gone and its answer dropped.
    assert (h.last().text or "").startswith("<b>Vos réponses</b>")
    assert "✏️ 7" not in str(h.last().reply_markup)
    answers = await h.answers(7)
    assert answers["rehab_priority"] == ("no",) and "rehab_focus" not in answers
    assert await h.status(7) == "submitted"
    # And back to yes: the follow-up must be answered before the review.
    await h.click(client, "✏️ 6")
    await h.click(client, "Oui")
    assert "Question 7 / 7" in (h.last().text or "")


async def test_resume_after_restart_at_the_first_unanswered_question(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    await h.click(client, "Inclusion des personnes")
    await h.click(client, "Stratégie locale commune")  # its axes come next
    await h.click(client, "Suivant")
    await h.click(client, h.app.consultation.questions[1].options[1].label["fr"])
    await h.click(client, "Suivant")
    # A new dispatcher over the same database = the bot restarted.
    restarted = h.client(dp=h.dispatcher())
    await restarted.send("/start")
    await h.click(restarted, "Continuer le sondage")
    assert (h.last().text or "").startswith("Question 3 / 6")
    await h.click(restarted, "Retour")
    text = h.last().text or ""
    assert text.startswith("Question 2 / 6")
    assert "✅ " + h.app.consultation.questions[1].options[1].label["fr"] in str(
        h.last().reply_markup
    )


async def test_survey_closed_while_answering(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    h.clock.now = NOW + timedelta(days=30)
    await h.click(client, "Inclusion des personnes")
    assert "Le sondage est clos" in h.bot.alerts()[-1]
    assert "Répondre au sondage" not in str(h.last().reply_markup)
    assert await h.answers(7) == {}


async def test_survey_closing_between_screen_and_commit_stores_nothing(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    # The dialog's check passes, then the survey closes before the answer is committed:
    # the service checks the phase again inside the storing transaction.
    import bot.survey.dialog as survey_dialog

    h = harness
    client = h.client()
    await start_survey(h, client)
    guard = survey_dialog._guard

    async def guard_then_close(event: Any, manager: Any) -> bool:
        allowed = await guard(event, manager)
        h.clock.now = NOW + timedelta(days=30)
        return allowed

    monkeypatch.setattr(survey_dialog, "_guard", guard_then_close)
    await h.click(client, "Inclusion des personnes")  # a pick is stored at once: refused
    assert "Le sondage vient de se clore" in h.bot.alerts()[-1]
    assert await h.answers(7) == {}
    assert "Répondre au sondage" not in str(h.last().reply_markup)


async def test_forged_option_and_stale_button(harness: Harness) -> None:
    h = harness
    client = h.client()
    dp = client.dp
    await start_survey(h, client)
    question = h.last()
    first = question.reply_markup.inline_keyboard[0][0]  # type: ignore[union-attr]
    forged = first.callback_data.rsplit(":", 1)[0] + ":nope"  # type: ignore[union-attr]
    await dp.feed_update(
        h.bot,
        Update(
            update_id=900,
            callback_query=CallbackQuery(
                id="forged", from_user=client.user, chat_instance="-", message=question, data=forged
            ),
        ),
    )
    assert h.bot.alerts()[-1] == "Cette réponse n’existe pas ou plus."
    # /start resets the stack: the old question's buttons are now stale.
    await client.send("/start")
    await client.click(question, button("Inclusion des personnes"))
    assert h.bot.alerts()[-1] == "Ce bouton n’est plus actif : voici le menu à jour."
    assert "Répondre au sondage" in str(h.last().reply_markup)
    assert await h.answers(7) == {}


async def test_unknown_language_is_asked_then_used(harness: Harness) -> None:
    h = harness
    client = h.client(language="de")
    await client.send("/start")
    assert "Choose your language" in (h.last().text or "")
    await h.click(client, "Nederlands")
    assert "Voor een veilige" in h.bot.texts()[-1] or "veilig" in h.bot.texts()[-1].lower()
    await h.click(client, "enquête") if "enquête" in str(h.last().reply_markup) else None
    assert "Nederlands" not in (h.last().text or "")


async def test_text_instead_of_a_tap_is_answered_politely(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    await client.send("inclusion please")
    assert h.bot.texts()[-1] == "Utilisez les boutons sous la question, s’il vous plaît."
    assert (h.last().text or "").startswith("Question 1 / 5")


async def test_invite_only_consultation(harness: Harness) -> None:
    h = harness
    h.app.consultation = h.app.consultation.model_copy(update={"access": "invite"})
    client = h.client(user_id=8)
    await client.send("/start")
    assert "réservée aux personnes invitées" in h.bot.texts()[-1]
    await client.send("/start inv_forged")
    assert "n’est pas valide" in h.bot.texts()[-2]


async def test_flooding_member_is_slowed_down_politely(harness: Harness) -> None:
    h = harness
    h.app.settings = h.app.settings.model_copy(update={"throttle_burst": 4, "throttle_rate": 0.01})
    client = h.client()
    await start_survey(h, client)  # /start and two clicks (the commune): 3 of the 4 allowed
    await h.click(client, "Inclusion des personnes")  # the pick is stored at once
    before = await h.answers(7)
    screen = h.last().text
    await h.click(client, "Suivant")  # dropped: nothing changes, a polite answer
    assert h.bot.alerts()[-1] == "Doucement, s’il vous plaît : réessayez dans un instant."
    assert await h.answers(7) == before == {"challenges": ("inclusion",)}
    assert h.last().text == screen and "Question 1 / " in screen


async def test_mydata_then_forget(harness: Harness) -> None:
    h = harness
    client = h.client()
    await start_survey(h, client)
    await h.click(client, "Inclusion des personnes")
    await h.click(client, "Suivant")
    await client.send("/mydata")
    data = h.bot.texts()[-1]
    assert "Identifiant Telegram : 7" in data and "Inclusion des personnes" in data
    await client.send("/forget")
    sent = [c for c in h.bot.calls if isinstance(c, SendMessage)][-1]
    assert "C’est définitif" in sent.text
    prompt = Message(
        message_id=77,
        date=NOW,
        chat=Chat(id=7, type="private"),
        text=sent.text,
        reply_markup=sent.reply_markup,
    )
    await client.click(prompt, button("Oui, tout effacer"))
    assert h.bot.alerts()[-1] == "Vos données ont été effacées."
    assert await h.status(7) is None
    async with h.services.sessionmaker() as session:
        from storage.models import Member

        assert await session.get(Member, 7) is None
    await client.send("/mydata")
    assert h.bot.texts()[-1] == "Nous ne conservons aucune donnée à votre sujet."


async def test_shared_idea_link_survives_the_language_question(harness: Harness) -> None:
    h = harness
    async with h.services.sessionmaker() as session:
        from storage.repositories.ideas import IdeaRepository
        from storage.repositories.members import MemberRepository

        author, _ = await MemberRepository(session).get_or_create(99, "Zoé")
        idea = await IdeaRepository(session).create(
            h.app.consultation.id, "inclusion", author.id, "Zoé", "Des bancs", "Au parc.", NOW
        )
        idea.status = "approved"
        await session.commit()
        idea_id = idea.id
    client = h.client(user_id=12, language="de")
    await client.send(f"/start idea_{idea_id}")
    assert "Choose your language" in (h.last().text or "")
    await h.click(client, "English")
    assert "Des bancs" in (h.last().text or "")


async def test_announce_for_organisers_only(harness: Harness) -> None:
    h = harness
    member = h.client(user_id=7)
    await member.send("/start")  # an ambassador (access is open)
    await member.send("/announce")
    assert h.bot.texts()[-1] == "Cette commande est réservée aux organisateurs."
    admin = h.client(user_id=1, dp=member.dp)
    await admin.send("/announce")
    assert "À qui l’envoyer ?" in (h.last().text or "")
    await h.click(admin, "Ambassadeurs")
    await admin.send("Réunion <b>jeudi</b> à 18 h")
    confirm = h.last().text or ""
    assert "envoyée à 2 personnes" in confirm  # the admin too became an ambassador at /announce
    await h.click(admin, "Envoyer")
    assert h.bot.alerts()[-1] == "Annonce envoyée à 2 membres."
    async with h.services.sessionmaker() as session:
        from sqlalchemy import select

        from storage.models import Delivery

        rows = (await session.scalars(select(Delivery))).all()
    assert sorted(r.chat_id for r in rows) == [1, 7]
    # The organiser's text is escaped: "<b>" typed as text does not become formatting.
    assert all("&lt;b&gt;jeudi&lt;/b&gt;" in (r.text or "") for r in rows)


async def test_picks_are_stored_at_each_tap_whatever_way_out(harness: Harness) -> None:
    """Leaving a multi-choice screen by /menu, /start or /language keeps what was ticked;
    unticking below the minimum leaves the question unanswered, as the screen shows it."""
    h = harness
    client = h.client()
    await start_survey(h, client)
    await h.click(client, "Inclusion des personnes")
    await h.click(client, "Vivre-ensemble sécure")
    await client.send("/menu")
    assert await h.answers(7) == {"challenges": ("inclusion", "living_together")}
    await h.click(client, "Continuer le sondage")  # resumes at the first unanswered one
    assert "Question 2 / " in h.last().text
    await h.click(client, "Retour")
    assert "✅ Inclusion des personnes" in str(h.last().reply_markup)  # ticked as left
    await h.click(client, "Inclusion des personnes")
    await h.click(client, "Vivre-ensemble sécure")
    await client.send("/language")
    assert await h.answers(7) == {}


async def test_the_default_fsm_state_is_neither_read_nor_filtered_on(harness: Harness) -> None:
    """MemberTurn (bot/telegram/middlewares/member_turn.py) skips aiogram's read of the default FSM
    state at every update: right only while no handler filters by state."""
    from aiogram.filters import StateFilter
    from aiogram.fsm.middleware import FSMContextMiddleware

    from bot.telegram.middlewares.member_turn import MemberTurn

    dp = harness.dispatcher()
    outer = list(dp.update.outer_middleware)
    assert any(isinstance(m, MemberTurn) for m in outer)
    assert not any(type(m) is FSMContextMiddleware for m in outer)
    filters = [
        f.callback
        for router in dp.chain_tail
        for observer in router.observers.values()
        for handler in observer.handlers
        for f in handler.filters or []
    ]
    assert filters  # the walk found the handlers' filters
    assert not any(isinstance(f, StateFilter) for f in filters)

    reads: list[str] = []
    get_state = harness.storage.get_state

    async def spy(key: Any) -> str | None:
        reads.append(key.destiny)
        return await get_state(key)

    harness.storage.get_state = spy  # type: ignore[method-assign]
    client = harness.client(dp=dp)
    await client.send("/start")
    await harness.click(client, "Répondre au sondage")
    await harness.click(client, "Je préfère ne pas le dire")  # the commune, asked once
    assert "Question 1 /" in (harness.last().text or "")  # dialogs and member lock work
    assert reads == []
