"""The bot's event loop: uvloop where it is installed (every platform but Windows).

In a profile of 50 members tapping on PostgreSQL + Redis, asyncio's own Python code (the
selector loop, transports, streams) was 13 % of the bot's CPU: every update makes several
round trips (Telegram, the database, the member lock). uvloop runs the same loop in C;
the bot's code does not depend on which loop runs it.
"""

from __future__ import annotations

import asyncio
from collections.abc import Callable, Coroutine
from typing import Any, TypeVar

T = TypeVar("T")


def loop_factory() -> Callable[[], asyncio.AbstractEventLoop] | None:
    try:
        import uvloop
    except ImportError:  # Windows: uvloop does not build there
        return None
    return uvloop.new_event_loop


def run(main: Coroutine[Any, Any, T]) -> T:
    """`asyncio.run`, on the fastest loop available."""
    with asyncio.Runner(loop_factory=loop_factory()) as runner:
        return runner.run(main)
