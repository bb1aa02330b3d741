"""The playground as an organiser meets it, in headless Chromium: `consultbot playground` started
as a user starts it; Amélie answers the survey on the page; the clock moves to the results
phase and Olivier (official) sees the results and the chart; then to the ideas phase, where
Amélie proposes an idea and Mona approves it in the moderation group.

Screenshots (and what every persona received, phase by phase) are kept in tmp_path, or in the
directory given by PLAYGROUND_SCREENSHOTS (docs/ holds the committed ones)."""

from __future__ import annotations

import asyncio
import json
import os
import re
import signal
import socket
import sys
import urllib.request
from pathlib import Path
from typing import Any

import pytest

from bot.consultation import load_consultation
from bot.i18n import Translator, typeset
from tests.support import DEFAULT_CONSULTATION, REPO

CHROMIUM = Path(os.environ.get("CHROMIUM", "/usr/bin/chromium"))
TR = Translator()
STEP = 20_000  # ms: the longest a single step may take
RESTART = 90_000  # ms: a restart of the bot (the playground's READY_TIMEOUT)


def t(msgid: str) -> str:
    return TR.gettext(msgid, locale="fr")


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def text_of(path: Path) -> str:
    return path.read_text(errors="replace") if path.exists() else ""


def get_json(url: str) -> Any:
    with urllib.request.urlopen(url, timeout=5) as response:  # loopback only
        return json.loads(response.read())


async def wait_until_ready(process: asyncio.subprocess.Process, base: str, log: Path) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + 60
    while loop.time() < deadline:
        if process.returncode is not None:
            pytest.fail(f"the playground exited:\n{text_of(log)}")
        try:
            state = await asyncio.to_thread(get_json, f"{base}/api/state")
            if state["status"] == "running":
                return
        except OSError:
            pass
        await asyncio.sleep(0.2)
    pytest.fail(f"the playground did not start within 60 s:\n{text_of(log)}")


class Journal:
    """What each persona received, phase by phase (for the organisers' notes)."""

    def __init__(self, base: str) -> None:
        self.base = base
        self.seen: dict[int, int] = {}
        self.lines: list[str] = []

    async def record(self, phase: str) -> None:
        state = await asyncio.to_thread(get_json, f"{self.base}/api/state")
        self.lines.append(f"\n## {phase}\n")
        for chat in state["chats"]:
            data = await asyncio.to_thread(get_json, f"{self.base}/api/chat/{chat['id']}")
            bot = [m for m in data["messages"] if m["from"] == "bot"]
            new = [m for m in bot if m["id"] > self.seen.get(chat["id"], 0)]
            self.seen[chat["id"]] = max([m["id"] for m in bot], default=0)
            self.lines.append(f"- **{chat['title']}** ({chat['label']}): {len(new)} new")
            for m in new:
                first = (m["text"] or f"[{m['kind']}]").strip().splitlines()[0][:110]
                kind = "🖼 " if m.get("photo") else "📄 " if m.get("document") else ""
                self.lines.append(f"  - {kind}{first}")


async def test_survey_results_and_moderation_in_the_browser(tmp_path: Path) -> None:
    if not os.access(CHROMIUM, os.X_OK):
        pytest.fail(
            f"the browser test needs Chromium at {CHROMIUM}: `make browser` installs it "
            "(apt-get install chromium)"
        )
    from playwright.async_api import async_playwright, expect

    consultation = load_consultation(DEFAULT_CONSULTATION)
    shots = Path(os.environ.get("PLAYGROUND_SCREENSHOTS") or tmp_path)
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    log = tmp_path / "playground.log"
    env = {k: v for k, v in os.environ.items() if k in ("PATH", "HOME", "LANG", "TMPDIR")}
    env.update(
        {
            "PYTHONPATH": str(REPO),
            "CONSULTATION_FILE": str(DEFAULT_CONSULTATION),
            "TELEGRAM_API_SPEC": os.environ.get("TELEGRAM_API_SPEC", ""),
        }
    )
    with log.open("wb") as out:
        process = await asyncio.create_subprocess_exec(
            sys.executable,
            "-m",
            "consultbot",
            "playground",
            "--port",
            str(port),
            cwd=tmp_path,
            env=env,
            stdout=out,
            stderr=out,
        )
    try:
        await wait_until_ready(process, base, log)
        journal = Journal(base)
        await journal.record("survey opens")
        async with async_playwright() as p:
            browser = await p.chromium.launch(executable_path=str(CHROMIUM), headless=True)
            page = await browser.new_page(viewport={"width": 1280, "height": 860})
            page.set_default_timeout(STEP)
            expect.set_options(timeout=STEP)
            await page.goto(base)
            await expect(page.locator("#status")).to_contain_text("running")

            messages = page.locator("#messages")

            async def press(label: str, exact: bool = True) -> dict[str, Any]:
                """Click the newest inline button with this label; the bot's answer."""
                pattern = (
                    re.compile(rf"^(\S+ )?{re.escape(label)}$") if exact else re.compile(label)
                )
                button = messages.locator(".keyboard button").filter(has_text=pattern).last
                async with page.expect_response("**/api/click") as response:
                    await button.click()
                result = await (await response.value).json()
                assert result["ok"], result
                return result["answer"]

            async def type_text(text: str) -> None:
                await page.locator("#text").fill(text)
                async with page.expect_response("**/api/send"):
                    await page.locator("#text").press("Enter")

            async def open_chat(key: str) -> None:
                # One click: the list is polled and updated in place, an item is never drawn
                # again under the pointer (a click on a replaced item used to be lost).
                item = page.locator(f"#chats li[data-chat={key}]")
                await item.click()
                await expect(item).to_have_class("active", timeout=STEP)

            async def move_to(phase: str) -> None:
                button = page.locator(f"#phases button[data-phase={phase}]")
                await button.click()
                # A restart may take a while on a busy machine (up to the playground's own limit).
                await expect(button).to_have_class("open", timeout=RESTART)
                await expect(page.locator("#status")).to_contain_text("running", timeout=RESTART)

            # -- survey: Amélie answers on the page
            await open_chat("amelie")
            await expect(messages).to_contain_text("c’est ouvert")  # the phase's announcement
            await page.locator("#start").click()
            await expect(messages.locator(".keyboard")).not_to_have_count(0)
            await press(t("📝 Répondre au sondage"))
            # No commune asked: Amélie's is Namur, as her invitation would say.
            chosen: dict[str, str] = {}
            for q in consultation.questions:
                if q.when is not None and not set(q.when.any) & {chosen.get(q.when.question)}:
                    continue
                await expect(messages.locator(".msg").last).to_contain_text(q.text["fr"][:25])
                option = q.options[-1] if q.id == "rehab_priority" else q.options[0]
                chosen[q.id] = option.id
                await press(option.label["fr"])
                if q.kind != "single":
                    await press(t("Suivant ▶️"))
            await expect(messages.locator(".msg").last).to_contain_text("Vos réponses")
            await page.screenshot(path=str(shots / "playground-survey.png"))
            await press(t("📨 Envoyer mes réponses"))
            await expect(messages).to_contain_text(t("🙏 Merci ! Vos réponses sont enregistrées."))
            await journal.record("survey answered (Amélie)")

            # -- results: the official's broadcast, chart included
            # The chat list is updated in place: its items outlive the polls and new messages
            # (an item drawn again between a press and its release would lose the click).
            await page.evaluate(
                "() => { window.chatItems = [...document.querySelectorAll('#chats li')]; }"
            )
            await move_to("results")
            await open_chat("olivier")
            chart = messages.locator(".bubble img").first
            await expect(chart).to_be_visible()
            assert await page.evaluate(
                "() => window.chatItems.length > 1 && window.chatItems.every((li) => li.isConnected)"
            )
            await page.wait_for_function(  # the PNG itself arrived and was decoded
                "() => { const img = document.querySelector('#messages .bubble img');"
                " return img && img.complete && img.naturalWidth > 300; }"
            )
            # Namur beside the network: Amélie and five neighbours, five more in Gent.
            await expect(messages).to_contain_text(
                typeset("Namur : 6 · réseau : 11 répondants", "fr")
            )
            first = consultation.questions[0]
            label = first.option(chosen[first.id]).text["fr"]  # type: ignore[union-attr,index]
            await expect(messages).to_contain_text(typeset(f"{label} — Namur : ", "fr"))
            await chart.evaluate("img => img.scrollIntoView({block: 'start'})")
            await page.screenshot(path=str(shots / "playground-results.png"))
            await journal.record("results phase")

            # -- ideas: Amélie proposes, Mona approves in the group
            await move_to("ideas")
            await open_chat("amelie")
            await type_text("/start")
            await press(t("💡 Idées"))
            await press(t("✍️ Proposer une idée"))
            project = consultation.phases[2].projects[0]
            await press(project.title["fr"])
            await expect(messages.locator(".msg").last).to_contain_text("Donnez un titre")
            await type_text("Des bancs sur la place")
            await expect(messages.locator(".msg").last).to_contain_text("Décrivez")
            await type_text("Des bancs pour se retrouver dehors, à distance.")
            await expect(messages.locator(".msg").last).to_contain_text("Aperçu")
            answer = await press(t("✅ Envoyer aux modérateurs"))
            assert answer["alert"] and answer["text"]
            await expect(page.locator("#alert")).to_be_visible()  # Telegram's alert box
            await page.locator("#alert-ok").click()

            await open_chat("group")
            await expect(page.locator("#actor-box")).to_be_visible()
            await page.locator("#actor").select_option(label="Mona")
            card = messages.locator(".msg").filter(has_text="Des bancs sur la place").last
            await expect(card).to_contain_text("Nouvelle idée")
            await press(t("✅ Approuver"))
            await expect(card).to_contain_text("Approuvée par Mona")
            await page.screenshot(path=str(shots / "playground-moderation.png"))
            await journal.record("ideas phase (an idea proposed and approved)")

            # An album (sendMediaGroup) is drawn as one bubble with its photos side by side.
            await page.evaluate(
                """() => renderMessages({keyboard: null, messages: [1, 2].map((id) => ({
                    id, from: "bot", kind: "photo", text: id === 1 ? "album" : "",
                    entities: [], buttons: [], album: "g1", photo: "/api/file/none"}))})"""
            )
            await expect(messages.locator(".album img")).to_have_count(2)
            await expect(messages.locator(".msg")).to_have_count(1)
            await browser.close()
        (shots / "playground-personas.md").write_text(
            "# What each persona received, phase by phase (from the browser test)\n"
            + "\n".join(journal.lines)
            + "\n",
            encoding="utf-8",
        )
    finally:
        if process.returncode is None:
            process.send_signal(signal.SIGTERM)
            try:
                await asyncio.wait_for(process.wait(), 30)
            except TimeoutError:
                process.kill()
                await process.wait()
    # Stopped cleanly: the playground stopped its bot too (no orphan process).
    assert process.returncode == 0, text_of(log)
    assert "ready: open" in text_of(log)
    bot_log = text_of(tmp_path / "data" / "playground" / "bot.log")
    assert "Traceback" not in bot_log, bot_log[-3000:]
