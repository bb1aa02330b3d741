"""The playground's engine and JSON API without a browser: the personas' chats, /export as
documents the page can download, the guards of a loopback-only page, the reset."""

from __future__ import annotations

import gzip
import json
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from aiohttp.test_utils import TestClient, TestServer

from playground.personas import MODERATION_GROUP_ID, ORGANISERS, PERSONAS
from playground.runner import Playground
from playground.spec import BUNDLED_SPEC_PATH, SHARED_SPEC_PATH
from playground.web import build_app
from tests.support import DEFAULT_CONSULTATION

OLGA = ORGANISERS[0].user_id
AMELIE = PERSONAS[0].user_id


def test_the_bundled_bot_api_description_is_the_shared_one() -> None:
    if not SHARED_SPEC_PATH.exists():  # a clone on its own: the bundled copy is all there is
        pytest.skip(f"no {SHARED_SPEC_PATH} beside this clone to compare the bundled copy with")
    with gzip.open(BUNDLED_SPEC_PATH, "rt", encoding="utf-8") as bundled:
        copy = json.load(bundled)
    assert copy == json.loads(SHARED_SPEC_PATH.read_text(encoding="utf-8")), (
        "refresh playground/telegram-bot-api.json.gz from ../shared/telegram-bot-api/api.json"
    )


@pytest.fixture
async def client(tmp_path: Path) -> AsyncIterator[tuple[TestClient, Playground]]:
    playground = Playground(DEFAULT_CONSULTATION, tmp_path / "data", "survey")
    async with TestClient(TestServer(build_app(playground))) as client:
        await playground.start()
        try:
            yield client, playground
        finally:
            await playground.close()
    assert playground.emulator.violations == []


async def chat(client: TestClient, chat_id: int) -> list[dict]:
    response = await client.get(f"/api/chat/{chat_id}")
    assert response.status == 200
    return (await response.json())["messages"]


async def test_personas_export_guards_and_reset(client: tuple[TestClient, Playground]) -> None:
    http, playground = client
    state = await (await http.get("/api/state")).json()
    assert state["status"] == "running" and state["phase"] == "survey"
    assert [c["key"] for c in state["chats"]] == [
        "amelie",
        "bram",
        "emma",
        "olivier",
        "mona",
        "marc",
        "group",
        "olga",
    ]
    group = next(c for c in state["chats"] if c["id"] == MODERATION_GROUP_ID)
    assert len(group["actors"]) == 2
    # The survey's announcement reached each ambassador, in their language.
    await playground.emulator.wait_for_bot_message(PERSONAS[1].user_id, "Bevraging")
    assert "Bevraging" in (await chat(http, PERSONAS[1].user_id))[0]["text"]

    # A page of another origin cannot drive the playground.
    form = await http.post("/api/send", data={"chat": OLGA, "text": "/status"})
    assert form.status == 415
    rebinding = await http.get("/api/state", headers={"Host": "playground.example:8080"})
    assert rebinding.status == 403
    assert (await http.post("/api/timeline", json={"phase": "vote"})).status == 400
    assert (await http.post("/api/send", json={"chat": 42, "text": "hi"})).status == 400

    # The organiser's /export arrives as documents that the page can download.
    sent = await http.post("/api/send", json={"chat": OLGA, "actor": OLGA, "text": "/export csv"})
    assert sent.status == 200
    await playground.emulator.wait_for_bot_message(OLGA, "Export terminé")
    documents = [m for m in await chat(http, OLGA) if "document" in m]
    assert [d["document"]["name"] for d in documents] == [
        f"deconfinement-2020-{kind}.csv"
        for kind in ("responses", "ideas", "comments", "results", "results_by_commune")
    ]
    download = await http.get(documents[0]["document"]["url"])
    body = await download.read()
    assert download.status == 200 and body.startswith(b"\xef\xbb\xbfrespondent,language")

    # A button that is not there: a short error for the page, nothing else.
    click = await http.post(
        "/api/click", json={"chat": AMELIE, "actor": AMELIE, "message": 1, "text": "Nope"}
    )
    assert (await click.json())["ok"] is False
    bad = await http.post("/api/click", json={"chat": AMELIE, "message": "x", "text": "Nope"})
    assert bad.status == 400

    # A bot that dies on its own is reported on the page, with the end of its log.
    assert playground.process is not None
    playground.process.kill()
    await playground.process.wait()
    died = await (await http.get("/api/state")).json()
    assert died["status"] == "failed" and "exit code" in died["error"]

    reset = await http.post("/api/reset", json={})
    assert reset.status == 200
    assert await chat(http, OLGA) == []
    await playground.emulator.wait_for_bot_message(AMELIE, "Sondage")
    assert len(await chat(http, AMELIE)) == 1  # the announcement again, nothing else
    assert (await (await http.get("/api/state")).json())["status"] == "running"
