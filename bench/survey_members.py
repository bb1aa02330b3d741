"""The simulated members of `survey_load.py`: people walking the survey with their thumbs.

Each member sends /start, opens the survey, answers every question (the first option; on a
multi-choice screen one tap on it, then ▶️), submits, and stops at the thanks screen. Members
pick their next button by the screen's shape (no text matching), so the driver stays cheap.

They are impatient, as people are: when the spinner stops (the query is answered) and the
screen has not changed 0.5 s later, they tap the same button again. A share of them tap twice
quickly whatever happens (`double`: the same button of the same screen, 80 ms later). A tap
always sends the callback data of the screen the member saw, not of the screen as it is when
the tap arrives: that is what a phone does.
"""

from __future__ import annotations

import asyncio
import contextlib
import gc
import itertools
import re
import time
from collections.abc import Iterator
from dataclasses import dataclass, field
from typing import Any

from playground import BotAPIEmulator, Click, SimUser, TranscriptEntry

TAP_TIMEOUT = 60.0
PATIENCE = 0.5  # seconds after the spinner stops on an unchanged screen
DOUBLE_GAP = 0.08  # the second tap of a quick double tap
_PROGRESS = re.compile(r"\d+ / \d+")


class SignallingEmulator(BotAPIEmulator):
    """The emulator, waking a member's coroutine when the bot changes that member's chat or
    answers one of their taps."""

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self.changed: dict[int, asyncio.Event] = {}
        self._tap_ids = itertools.count(1)

    def _touch(self, chat: Any, entry: TranscriptEntry) -> None:
        super()._touch(chat, entry)
        if entry.direction == "bot":
            event = self.changed.get(chat.id)
            if event is not None:
                event.set()

    async def _api_answerCallbackQuery(self, req: Any) -> Any:
        result = await super()._api_answerCallbackQuery(req)
        click = self._clicks.get(req.params["callback_query_id"])
        event = self.changed.get(click.user_id) if click is not None else None
        if event is not None:
            event.set()
        return result

    def tap(self, user: SimUser, entry: TranscriptEntry, data: str) -> Click:
        """A callback query with this data, from this message (as the member saw it)."""
        query_id = f"t{next(self._tap_ids)}"
        click = Click(
            query_id=query_id,
            user_id=user.id,
            chat_id=user.id,
            message_id=entry.message_id,
            button_text="?",
            callback_data=data,
            seq=self._next_seq(),
            future=asyncio.get_running_loop().create_future(),
        )
        self._clicks[query_id] = click
        self._enqueue(
            "callback_query",
            {
                "id": query_id,
                "from": user.as_dict(),
                "message": entry.message,
                "chat_instance": str(user.id),
                "data": data,
            },
        )
        return click


@dataclass
class Walk:
    latencies: list[float] = field(default_factory=list)
    buttons: list[str] = field(default_factory=list)  # the button of each latency
    taps: int = 0
    again: int = 0  # taps repeated by impatience
    undone: int = 0  # options seen unticked after the member's own tick on that question
    done: bool = False
    error: str = ""
    clicks: list[Click] = field(default_factory=list)


def _screen(user: SimUser) -> TranscriptEntry | None:
    """The member's dialog message: the newest bot message with buttons."""
    for entry in reversed(user.transcript()):
        if entry.direction == "bot" and not entry.deleted and entry.buttons:
            return entry
    return None


def _choose(entry: TranscriptEntry) -> str | None:
    """The button to press next on this screen, or None when the walk is over."""
    rows = entry.buttons
    flat = [b for row in rows for b in row]
    if entry.text.startswith("🙏") or "🙏" in entry.text[:40]:
        return None
    for b in flat:
        if b.startswith("📨"):
            return b
    if flat and flat[0].startswith("📝"):
        return flat[0]
    options = [b for row in rows[:-1] for b in row]
    if not options:
        return None
    if options[0].startswith(("⚪", "🔘")):
        return options[0]
    if any(b.startswith("✅") for b in options):
        return rows[-1][-1]  # ▶️
    return options[0]


# The commune screen (asked once, before the first question): the member types this code.
POSTAL_CODE = "5000"


def _asks_commune(entry: TranscriptEntry) -> bool:
    """The commune prompt: "rather not say" (🤐) and no list of matches yet (no 🔎)."""
    flat = [b for row in entry.buttons for b in row]
    return any(b.startswith("🤐") for b in flat) and not any(b.startswith("🔎") for b in flat)


def _data(entry: TranscriptEntry, text: str) -> str:
    rows = (entry.markup or {}).get("inline_keyboard", [])
    return next(b["callback_data"] for row in rows for b in row if b["text"] == text)


def _changed(emu: SignallingEmulator, user: SimUser, seq: int) -> bool:
    touched = emu._chats[user.id].touched
    return bool(
        touched
        and touched[-1][0] > seq
        and any(s > seq and e.direction == "bot" for s, e in reversed(touched[-4:]))
    )


async def _until(emu: SignallingEmulator, user: SimUser, seconds: float) -> None:
    """Until something happens in the member's chat, or `seconds` pass."""
    event = emu.changed[user.id]
    event.clear()
    try:
        await asyncio.wait_for(event.wait(), max(seconds, 0.0))
    except TimeoutError:
        pass


async def _changed_since(emu: SignallingEmulator, user: SimUser, seq: int, timeout: float) -> bool:
    deadline = time.perf_counter() + timeout
    while not _changed(emu, user, seq):
        left = deadline - time.perf_counter()
        if left <= 0:
            return False
        await _until(emu, user, left)
    return True


async def open_chat(emu: SignallingEmulator, user: SimUser, timeout: float = TAP_TIMEOUT) -> bool:
    """/start, then wait for the menu (the welcome comes before it); False if no answer."""
    seq = emu.seq
    await user.send("/start")
    if not await _changed_since(emu, user, seq, timeout):
        return False
    deadline = time.perf_counter() + timeout
    while _screen(user) is None and time.perf_counter() < deadline:
        await _changed_since(emu, user, emu.seq, 1.0)
    return True


@contextlib.contextmanager
def measuring() -> Iterator[None]:
    """This process's garbage collector held off while it times taps: its pauses counted as
    the bot's latency. In bench/results_load.py a full collection of this process (the
    emulator keeps every request) stopped its loop for 110 ms 2.9 s into a storm round, and
    the round's four slowest taps (126-148 ms) were those in flight then. As `timeit` does."""
    gc.collect()
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


async def stop_process(process: asyncio.subprocess.Process, timeout: float = 20) -> None:
    """SIGTERM, then SIGKILL if it has not exited within `timeout` seconds."""
    if process.returncode is not None:
        return
    process.terminate()
    try:
        await asyncio.wait_for(process.wait(), timeout)
    except TimeoutError:
        process.kill()
        await process.wait()


class Member:
    def __init__(self, emu: SignallingEmulator, user: SimUser, double: bool) -> None:
        self.emu = emu
        self.user = user
        self.double = double
        self.walk = Walk()
        self.ticked: set[str] = set()  # question screens where our option was seen ticked

    def _tap(self, entry: TranscriptEntry, data: str) -> Click:
        click = self.emu.tap(self.user, entry, data)
        self.walk.taps += 1
        self.walk.clicks.append(click)
        return click

    async def press(self, entry: TranscriptEntry, choice: str) -> bool:
        """One step: tap, and again while the spinner stops on an unchanged screen; False if
        nothing ever changed."""
        emu, user = self.emu, self.user
        data = _data(entry, choice)
        seq = emu.seq
        started = time.perf_counter()
        deadline = started + TAP_TIMEOUT
        click = self._tap(entry, data)
        if self.double:
            asyncio.get_running_loop().call_later(DOUBLE_GAP, self._tap, entry, data)
        answered_at: float | None = None
        while not _changed(emu, user, seq):
            now = time.perf_counter()
            if now > deadline:
                return False
            if click.answer is not None and click.answer.text:
                break  # told something (an alert): look at the screen again
            if click.answer is not None and answered_at is None:
                answered_at = now
            if answered_at is not None and now - answered_at >= PATIENCE:
                click = self._tap(entry, data)  # the spinner stopped, nothing changed
                self.walk.again += 1
                answered_at = None
                continue
            wait = deadline - now if answered_at is None else answered_at + PATIENCE - now
            await _until(emu, user, wait)
        self.walk.latencies.append(time.perf_counter() - started)
        self.walk.buttons.append(choice)
        # The next tap comes once the spinner stopped too (a thumb is not that quick): for a
        # bot that answers after drawing, a moment later.
        if click.answer is None:
            await asyncio.wait([click.future], timeout=5.0)
        return True

    async def type(self, text: str) -> bool:
        """A typed answer (the commune's postal code): sent once, people do not retype."""
        emu, user = self.emu, self.user
        seq, started = emu.seq, time.perf_counter()
        await user.send(text)
        if not await _changed_since(emu, user, seq, TAP_TIMEOUT):
            return False
        self.walk.latencies.append(time.perf_counter() - started)
        self.walk.buttons.append(text)
        self.walk.taps += 1
        return True

    def _notice_undone(self, entry: TranscriptEntry) -> None:
        head = entry.text.split("\n", 1)[0]
        if not _PROGRESS.search(head):  # not a question screen
            return
        options = [b for row in entry.buttons[:-1] for b in row]
        if not options or options[0].startswith(("⚪", "🔘")):
            return
        if options[0].startswith("✅"):
            self.ticked.add(head)
        elif head in self.ticked:
            self.walk.undone += 1
            self.ticked.discard(head)

    async def run(self, go: asyncio.Event) -> Walk:
        emu, user, result = self.emu, self.user, self.walk
        emu.changed[user.id] = asyncio.Event()
        await go.wait()
        if not await open_chat(emu, user):
            result.error = "no answer to /start"
            return result
        for _step in range(80):
            entry = _screen(user)
            deadline = time.perf_counter() + TAP_TIMEOUT
            while entry is None and time.perf_counter() < deadline:
                # A typed answer: the old screen loses its keyboard before the new one comes.
                await _changed_since(emu, user, emu.seq, 1.0)
                entry = _screen(user)
            if entry is not None and _asks_commune(entry):
                if not await self.type(POSTAL_CODE):
                    result.error = "no new screen after the postal code"
                    return result
                continue
            choice = _choose(entry) if entry is not None else None
            if entry is not None:
                self._notice_undone(entry)
            if choice is None:
                result.done = entry is not None
                if not result.done:
                    result.error = "no screen"
                return result
            assert entry is not None
            if not await self.press(entry, choice):
                result.error = f"no new screen after [{choice}]"
                return result
        result.error = "too many steps"
        return result
