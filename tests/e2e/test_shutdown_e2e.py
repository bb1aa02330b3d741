"""SIGTERM stops the real bot process cleanly: it refuses new updates (webhook: 503, so
Telegram sends them again), finishes the ones it accepted, hands its claims back, leaves its
instance row and exits 0. An update the emulator saw acknowledged is never lost."""

from __future__ import annotations

import asyncio
import signal
from collections import Counter
from datetime import UTC, datetime
from typing import Any

import aiohttp
from sqlalchemy import func, select

from bot.consultation import load_consultation
from bot.i18n import Translator
from playground import BotAPIEmulator, SimUser
from storage.db import make_engine, make_sessionmaker
from storage.models import Delivery, Instance, Response
from tests.e2e.conftest import E2E, BotProcess, open_survey, wait_button
from tests.e2e.test_webhook_e2e import free_port
from tests.support import default_document, survey_now

TR = Translator()
SECRET = "shutdown-secret-for-tests"
MEMBERS = 40
LANGUAGES = ("fr", "nl", "en")


def t(msgid: str, lang: str) -> str:
    return TR.gettext(msgid, locale=lang)


def update_of(emu: BotAPIEmulator, message: dict[str, Any]) -> int:
    return next(u["update_id"] for u in reversed(emu.updates) if u.get("message") is message)


async def exit_code(bot: BotProcess, deadline: float = 60) -> int:
    """The process's exit status once it has left (at most `deadline` seconds: a hang fails)."""
    assert bot.process is not None
    async with asyncio.timeout(deadline):
        return await bot.process.wait()


async def database_rows(url: str) -> tuple[int, int]:
    """Instance rows, and outbox rows still claimed."""
    engine = make_engine(url)
    try:
        async with make_sessionmaker(engine)() as session:
            instances = await session.scalar(select(func.count()).select_from(Instance))
            claimed = await session.scalar(
                select(func.count())
                .select_from(Delivery)
                .where(Delivery.claimed_by.is_not(None), Delivery.status == "sending")
            )
        return int(instances or 0), int(claimed or 0)
    finally:
        await engine.dispose()


async def health(port: int) -> int:
    async with aiohttp.ClientSession() as session:
        try:
            async with session.get(f"http://127.0.0.1:{port}/healthz") as response:
                return response.status
        except aiohttp.ClientError:
            return 0  # nobody listens any more


def webhook_bot(e2e: E2E, port: int) -> BotProcess:
    path = e2e.consultation(survey_now(datetime.now(UTC)))
    return e2e.bot(
        path,
        WEBHOOK_URL=f"http://127.0.0.1:{port}",
        WEBHOOK_SECRET=SECRET,
        WEBHOOK_LISTEN=f"127.0.0.1:{port}",
        INSTANCE_NAME="shutdown-test",
    )


async def test_webhook_sigterm_finishes_the_accepted_update_and_refuses_new_ones(
    e2e: E2E,
) -> None:
    emu, port = e2e.emulator, free_port()
    bot = webhook_bot(e2e, port)
    await bot.start(ready_method="setWebhook")
    assert await health(port) == 200
    hook = emu.webhook
    assert hook is not None and hook.max_connections == 100

    anne, bob = emu.add_user(3001, "Anne", "fr"), emu.add_user(3002, "Bob", "fr")
    held = emu.hold("sendMessage", chat_id=anne.id)  # Anne's /start stays in its handler
    anne_update = update_of(emu, await anne.send("/start"))
    await emu.wait_for(lambda: held.held >= 1, what="Anne's menu on its way")

    assert bot.process is not None
    bot.process.send_signal(signal.SIGTERM)

    async def unhealthy() -> bool:
        return await health(port) == 503

    await emu.wait_for(unhealthy, timeout=20, what="/healthz to say 503 once stopping")
    bob_update = update_of(emu, await bob.send("/start"))
    await emu.wait_for(
        lambda: (bob_update, 503) in hook.refused, what="Bob's update refused with 503"
    )
    assert anne_update not in hook.acknowledged  # still being handled: not acknowledged
    assert not bot.exited()  # waiting for Anne's update

    held.release()
    assert await exit_code(bot) == 0, bot.log_tail()
    assert anne_update in hook.acknowledged  # handled, then acknowledged
    assert bob_update not in hook.acknowledged
    await wait_button(anne, "Répondre au sondage")
    assert [e for e in bob.transcript() if e.direction == "bot"] == []
    assert await database_rows(e2e.database_url) == (0, 0)  # its row gone, no claim left
    log = bot.log_path.read_text()
    assert "SIGTERM received: stopping" in log and "stopped cleanly" in log

    # Telegram keeps sending Bob's update: the next process handles it.
    await bot.start(ready_method="setWebhook")
    await wait_button(bob, "Répondre au sondage", timeout=30)
    # acknowledged once handled: the answer to Telegram's request comes after the menu
    await emu.wait_for(
        lambda: bob_update in emu.webhook.acknowledged,  # type: ignore[union-attr]
        what="Bob's update acknowledged by the new process",
    )


async def test_polling_sigterm_finishes_the_update_it_took(e2e: E2E) -> None:
    emu = e2e.emulator
    path = e2e.consultation(survey_now(datetime.now(UTC)))
    bot = e2e.bot(path, INSTANCE_NAME="shutdown-polling")
    await bot.start()
    anne = emu.add_user(3101, "Anne", "fr")
    held = emu.hold("sendMessage", chat_id=anne.id)
    await anne.send("/start")
    await emu.wait_for(lambda: held.held >= 1, what="Anne's menu on its way")
    # By now polling has confirmed the update: Telegram would never send it again.
    assert bot.process is not None
    bot.process.send_signal(signal.SIGTERM)
    await emu.wait_for(lambda: "SIGTERM" in bot.log_path.read_text(), what="the bot to get SIGTERM")
    assert not bot.exited()
    held.release()
    assert await exit_code(bot) == 0, bot.log_tail()
    await wait_button(anne, "Répondre au sondage")
    assert await database_rows(e2e.database_url) == (0, 0)


async def walk(user: SimUser, lang: str, option: str) -> None:
    """/start, the survey's first question, one option, on to the review, submit."""
    patient = 90  # the bot is stopped and started again meanwhile
    await user.send("/start")
    await open_survey(user, lang, timeout=patient)
    await wait_button(user, option, timeout=patient)
    await user.click(option, timeout=patient)
    await user.click(t("Suivant ▶️", lang), timeout=patient)
    await wait_button(user, t("📨 Envoyer mes réponses", lang), timeout=patient)
    await user.click(t("📨 Envoyer mes réponses", lang), timeout=patient)
    await user.wait_for_message(t("🙏 Merci ! Vos réponses sont enregistrées.", lang), patient)


async def test_sigterm_under_a_crowd_loses_no_acknowledged_update(e2e: E2E) -> None:
    emu, port = e2e.emulator, free_port()
    # One question: a walk is five updates, /start to submit.
    questions = default_document()["questions"][:1]
    path = e2e.consultation(survey_now(datetime.now(UTC)), questions=questions)
    document = load_consultation(path)
    question = document.questions[0]
    env = {
        "WEBHOOK_URL": f"http://127.0.0.1:{port}",
        "WEBHOOK_SECRET": SECRET,
        "WEBHOOK_LISTEN": f"127.0.0.1:{port}",
        "INSTANCE_NAME": "shutdown-crowd",
    }
    first = e2e.bot(path, **env)
    await first.start(ready_method="setWebhook")
    hook = emu.webhook
    assert hook is not None
    people = {4001 + i: LANGUAGES[i % 3] for i in range(MEMBERS)}
    users = {m: emu.add_user(m, f"M{m}", lang) for m, lang in people.items()}
    option = {
        m: document.text(question.options[i % len(question.options)].label, lang)
        for i, (m, lang) in enumerate(people.items())
    }
    walks = asyncio.gather(*(walk(users[m], lang, option[m]) for m, lang in people.items()))

    # SIGTERM in the middle of the crowd: a third of the walks' 200 updates acknowledged.
    await emu.wait_for(lambda: len(hook.acknowledged) >= 70, timeout=60, what="70 updates")
    assert first.process is not None
    first.process.send_signal(signal.SIGTERM)
    assert await exit_code(first) == 0, first.log_tail()
    acknowledged = list(hook.acknowledged)
    refused = Counter(status for _, status in hook.refused)
    assert await database_rows(e2e.database_url) == (0, 0)

    # Every acknowledged update was handled before the process left: the bot answered in
    # that chat after the update was queued. (A member taps only once the previous screen
    # is shown, so the last acknowledged update of each chat is the one to check.)
    last: dict[int, int] = {}
    for update_id in acknowledged:
        update = next(u for u in emu.updates if u["update_id"] == update_id)
        payload = update.get("message") or update["callback_query"]
        chat = (payload.get("chat") or payload["message"]["chat"])["id"]
        last[chat] = update_id
    unanswered = [
        update_id
        for chat, update_id in last.items()
        if not any(
            entry.direction == "bot" and entry.seq > emu.queued_at[update_id]
            for entry in emu.transcript(chat)
        )
    ]
    assert unanswered == [], f"acknowledged, never handled: {unanswered}"

    # Whatever was refused or never sent goes to the next process: every walk completes.
    second = e2e.bot(path, **env)
    await second.start(ready_method="setWebhook")
    await walks
    engine = make_engine(e2e.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            submitted = await session.scalar(
                select(func.count()).select_from(Response).where(Response.status == "submitted")
            )
    finally:
        await engine.dispose()
    assert submitted == MEMBERS
    print(
        f"\nSIGTERM under {MEMBERS} members: {len(acknowledged)} updates acknowledged by the "
        f"first process, all handled; refused while stopping: {dict(refused)}; "
        f"{submitted} surveys submitted after the restart"
    )
