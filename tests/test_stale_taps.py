"""A stale tap's error handling (bot/ui/errors.py: the menu drawn again) takes its turn like
any update: it holds the member's lock, so the member's next tap never runs beside it.

Found by bench/survey_load.py on PostgreSQL + Redis: a member tapped "Namur" twice on the
commune list; the second tap, on the closed commune dialog, went to the error handlers after
the member's lock was released. They reset the dialog stack while the next tap ("Inclusion")
ran, the two left a stack without its contexts, and from then on "📝 Répondre au sondage" only
drew the menu again: 80 taps, never a question."""

from __future__ import annotations

import asyncio
import functools
import secrets
from collections.abc import AsyncIterator
from dataclasses import replace
from typing import Any

import pytest
from aiogram.fsm.storage.base import StorageKey

from bot.app import create_storage
from bot.ui import errors
from storage.dialog_state.member_lock import SharedMemberLock
from tests import test_dialogs
from tests.support import REDIS_URL
from tests.test_dialogs import Harness, button, start_survey
from tests.test_member_lock import reachable

harness = pytest.fixture(test_dialogs.harness.__wrapped__)  # the dialog tests' harness


@pytest.fixture
async def redis_harness(harness: Harness) -> AsyncIterator[Harness]:
    """The same harness with the Redis dialog storage and the shared member lock, as the bot
    runs with PostgreSQL + Redis."""
    await reachable()
    settings = harness.app.settings.model_copy(update={"redis_url": REDIS_URL})
    app = replace(harness.app, settings=settings)
    storage: Any = create_storage(settings, sessionmaker=None)
    yield replace(harness, app=app, storage=storage)
    await storage.close()


def _member_lock_held(isolation: Any, user_id: int) -> bool:
    if isinstance(isolation, SharedMemberLock):
        return any(name.endswith(f":{user_id}:{user_id}:lock") for name in isolation.held)
    key = StorageKey(bot_id=isolation_bot_id(isolation), chat_id=user_id, user_id=user_id)
    return isolation._locks[key].locked()  # type: ignore[no-any-return]


def isolation_bot_id(isolation: Any) -> int:
    return next(iter(isolation._locks)).bot_id  # type: ignore[no-any-return]


async def _stale_tap_runs_in_the_members_turn(h: Harness, monkeypatch: pytest.MonkeyPatch) -> None:
    user = 1_000 + secrets.randbelow(10**6)  # Redis keys of other runs never meet this one's
    held: list[bool] = []
    original = errors.stale_button

    @functools.wraps(original)  # aiogram passes what the signature asks for
    async def spy(*args: Any, **kwargs: Any) -> None:
        held.append(_member_lock_held(dp.fsm.events_isolation, user))
        await original(*args, **kwargs)

    monkeypatch.setattr(errors, "stale_button", spy)
    client = h.client(user_id=user)
    dp = client.dp
    await start_survey(h, client)
    question = h.last()
    await client.send("/start")  # the question's buttons are stale now
    menu = h.last()
    # The stale tap and the next one at once, as a member tapping twice does.
    await asyncio.gather(
        client.click(question, button("Inclusion des personnes")),
        client.click(menu, button("Répondre au sondage")),
    )
    assert held and all(held)  # the second too, when the first's new menu made it stale
    # Whatever order they ran in, the member is not stuck: the survey opens.
    await client.send("/start")
    await h.click(client, "Répondre au sondage")
    assert (h.last().text or "").startswith("Question 1 / ")
    await h.click(client, "Inclusion des personnes")
    assert await h.answers(user) == {"challenges": ("inclusion",)}


async def test_a_stale_tap_is_handled_in_the_members_turn(
    harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _stale_tap_runs_in_the_members_turn(harness, monkeypatch)


async def test_a_stale_tap_is_handled_in_the_members_turn_with_redis(
    redis_harness: Harness, monkeypatch: pytest.MonkeyPatch
) -> None:
    await _stale_tap_runs_in_the_members_turn(redis_harness, monkeypatch)
