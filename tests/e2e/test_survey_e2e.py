"""Three members answer the whole seed survey in French, Dutch and English; the bot is killed
with SIGKILL half-way through one of them, restarted, and nothing is lost."""

from __future__ import annotations

import os
from datetime import UTC, datetime

import pytest

from bot.consultation import load_consultation
from bot.i18n import Translator
from playground import SimUser
from storage.db import make_engine, make_sessionmaker
from storage.repositories.communes import CommuneRepository, MemberCommune
from storage.repositories.survey import SurveyRepository
from tests.e2e.conftest import E2E, give_commune, wait_button
from tests.support import REDIS_URL, seed_answers, survey_now

TR = Translator()


def t(msgid: str, lang: str) -> str:
    return TR.gettext(msgid, locale=lang)


async def answer(
    user: SimUser, lang: str, consultation, plan: dict[str, list[str]], questions
) -> None:  # type: ignore[no-untyped-def]
    for q in questions:
        if q.when is not None and not set(plan.get(q.when.question, [])) & set(q.when.any):
            continue
        message = await user.wait_for_message(f"{q.text[lang][:25]}")
        assert "/" in message.text.splitlines()[0]  # the progress line, e.g. "3 / 6"
        for option_id in plan[q.id]:
            label = consultation.text(q.option(option_id).label, lang)
            await user.click(label)
        if q.kind != "single":  # single choice moves on by itself
            await user.click(t("Suivant ▶️", lang))


async def fresh_redis(url: str) -> None:
    from redis.asyncio import Redis

    client = Redis.from_url(url)
    try:
        await client.flushdb()
    except OSError as exc:
        pytest.fail(f"Redis is required for this test and unreachable at {url}: {exc}")
    finally:
        await client.aclose()


@pytest.mark.parametrize("backend", ["sqlite", "postgresql+redis"])
async def test_three_members_one_crash(
    e2e: E2E, backend: str, request: pytest.FixtureRequest
) -> None:
    env = {}
    if backend == "postgresql+redis":
        # The several-instances configuration: PostgreSQL, and dialogs kept in Redis.
        e2e.database_url = request.getfixturevalue("postgres_url")
        redis_url = REDIS_URL  # this run's own database (TEST_REDIS_URL), flushed
        await fresh_redis(redis_url)
        env["REDIS_URL"] = redis_url
    now = datetime.now(UTC)
    path = e2e.consultation(survey_now(now))
    consultation = load_consultation(path)
    bot = e2e.bot(path, **env)
    await bot.start()
    emu = e2e.emulator
    people = [
        (emu.add_user(1001, "Anne", "fr"), "fr"),
        (emu.add_user(1002, "Bram", "nl"), "nl"),
        (emu.add_user(1003, "Emma", "en"), "en"),
    ]
    plans = seed_answers()[:3]
    plans[1]["rehab_priority"] = ["no"]  # Bram says no: the follow-up is skipped for him
    plans[1].pop("rehab_focus", None)

    for user, lang in people:
        await user.send("/start")
        welcome = await user.wait_for_message(consultation.text(consultation.intro, lang)[:30])
        assert consultation.text(consultation.title, lang) in welcome.text
        await wait_button(user, t("📝 Répondre au sondage", lang))
        await user.click(t("📝 Répondre au sondage", lang))
        namur = consultation.commune("namur")
        assert namur is not None
        await give_commune(user, namur.label(lang, consultation.source_language))

    questions = consultation.questions
    first_half, second_half = questions[:3], questions[3:]
    for (user, lang), plan in zip(people, plans, strict=True):
        await answer(user, lang, consultation, plan, first_half)

    # Bram's fourth question is on screen; the process dies without any clean-up.
    await bot.kill()
    await bot.start()

    bram, _lang = people[1]
    await bram.send("/start")
    await wait_button(bram, t("📝 Continuer le sondage", "nl"))
    await bram.click(t("📝 Continuer le sondage", "nl"))
    resumed = await bram.wait_for_message(consultation.text(questions[3].text, "nl")[:25])
    assert resumed.text.startswith(t("Question {progress}", "nl").format(progress="4 / 6"))

    # The others simply keep tapping on the screen they had before the crash.
    for (user, lang), plan in zip(people, plans, strict=True):
        await answer(user, lang, consultation, plan, second_half)
        review = await user.wait_for_message(
            t("<b>Vos réponses</b>", lang).replace("<b>", "").replace("</b>", "")
        )
        assert "✏️" in str(review.buttons)
        await user.click(t("📨 Envoyer mes réponses", lang))
        await user.wait_for_message(t("🙏 Merci ! Vos réponses sont enregistrées.", lang))

    engine = make_engine(e2e.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            repo = SurveyRepository(session)
            for (user, _lang), plan in zip(people, plans, strict=True):
                response = await repo.response(consultation.id, user.id)
                assert response is not None and response.status == "submitted"
                stored = {
                    q: sorted(a.choices) for q, a in (await repo.answers(response.id)).items()
                }
                assert stored == {q: sorted(c) for q, c in plan.items()}
                commune = await CommuneRepository(session).of_member(user.id)
                assert commune == MemberCommune("namur", True)
    finally:
        await engine.dispose()
    assert bot.starts == 2
    if os.environ.get("E2E_TRANSCRIPT"):
        for user, _lang in people:
            print(f"\n===== {user.first_name} =====\n{user.render_transcript()}")
