"""The outbox's doorbell: rung after a commit that queued deliveries, so they leave at once."""

from __future__ import annotations

import asyncio
import contextlib


class OutboxDoorbell:
    """Made once in bot/app.py, before the Outbox, and handed to it and to whatever queues
    deliveries. Ringing while no outbox listens (a test, the command line) does nothing."""

    def __init__(self) -> None:
        self._rung = asyncio.Event()

    def ring(self) -> None:
        self._rung.set()

    async def wait(self, timeout: float) -> None:
        """Until the next ring, or `timeout` seconds (a ring before this call is forgotten)."""
        self._rung.clear()
        with contextlib.suppress(TimeoutError):
            await asyncio.wait_for(self._rung.wait(), timeout)
