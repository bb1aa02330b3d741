"""aiogram's models built on first use (bot/telegram/lazy_models.py): every one still builds."""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap

from tests.support import TAP_UPDATE

# A fresh interpreter: this test process imported aiogram long ago (eagerly).
PROBE = textwrap.dedent(
    """
    import json, sys
    import consultbot  # defers the builds, as the `consultbot` command does
    from pydantic import BaseModel
    import aiogram.types as types

    models = [
        m for name in types.__all__
        if isinstance(m := getattr(types, name), type) and issubclass(m, BaseModel)
    ]
    deferred = sum(not m.__pydantic_complete__ for m in models)
    update = types.Update.model_validate(json.loads(sys.argv[1]))
    failed = []
    for model in models:
        try:
            model.model_rebuild()
        except Exception as exc:
            failed.append(f"{model.__name__}: {exc}")
    # every method, and the model its result is parsed with (as aiogram's session does)
    import aiogram.methods as methods
    from aiogram.methods.base import Response
    checked = 0
    for name in methods.__all__:
        method = getattr(methods, name)
        if isinstance(getattr(method, "__returning__", property()), property):
            continue  # not a method: the abstract base, helpers
        try:
            method.model_rebuild()
            Response[method.__returning__].model_rebuild()
            checked += 1
        except Exception as exc:
            failed.append(f"{name}: {exc}")
    print(json.dumps({
        "models": len(models),
        "deferred": deferred,
        "methods": checked,
        "failed": failed,
        "update": update.model_dump(mode="json", exclude_none=True),
    }))
    """
)


def test_every_aiogram_model_builds_on_first_use_and_parses_as_an_eager_build() -> None:
    from aiogram.types import Update

    done = subprocess.run(
        [sys.executable, "-c", PROBE, json.dumps(TAP_UPDATE)],
        capture_output=True,
        text=True,
        timeout=120,
        check=True,
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report["models"] > 300, report
    assert report["methods"] > 150, report
    # deferred at import (all but the few pydantic builds while importing)…
    assert report["deferred"] > report["models"] * 0.9
    # …and every one resolves its forward references when built
    assert report["failed"] == []
    eager = Update.model_validate(TAP_UPDATE).model_dump(mode="json", exclude_none=True)
    assert report["update"] == eager


WARM = textwrap.dedent(
    """
    import json
    import consultbot  # defers the builds, as the `consultbot` command does
    from aiogram import methods
    from aiogram.methods.base import Response
    from aiogram.types import InlineKeyboardButton, InlineKeyboardMarkup
    from bot.telegram import lazy_models

    results = lazy_models.warm_up()
    tap = [methods.EditMessageText, methods.AnswerCallbackQuery, methods.SendMessage]
    tap += [methods.SendMediaGroup, methods.SendPhoto, methods.SendDocument]  # /results
    cold = [m.__name__ for m in tap if not m.__pydantic_complete__]
    cold += [str(r) for r in results if not r.__pydantic_complete__]
    # the models a request builds are the ones warmed, not new ones
    same = all(Response[m.__returning__] in results for m in tap)
    keyboard = InlineKeyboardMarkup(inline_keyboard=[[InlineKeyboardButton(text="a", callback_data="b")]])
    methods.EditMessageText(chat_id=1, message_id=2, text="t", reply_markup=keyboard)
    print(json.dumps({"cold": cold, "same": same}))
    """
)


def test_the_warm_up_builds_what_a_tap_sends_and_the_models_of_their_results() -> None:
    done = subprocess.run(
        [sys.executable, "-c", WARM], capture_output=True, text=True, timeout=120, check=True
    )
    report = json.loads(done.stdout.strip().splitlines()[-1])
    assert report == {"cold": [], "same": True}
