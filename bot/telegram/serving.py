"""Receiving updates (long polling or the webhook server) until SIGTERM/SIGINT, then stopping
cleanly: nothing new accepted, the accepted updates finished, within a bounded time.

aiogram installs signal handlers for polling only, and its polling leaves the updates being
handled to be cancelled with the event loop; here both modes stop the same way, and the
caller then hands the outbox's claims back (bot/app.py)."""

from __future__ import annotations

import asyncio
import logging
import signal

from aiogram import Bot, Dispatcher
from aiogram.webhook.aiohttp_server import setup_application
from aiohttp import web

from bot.config import Settings
from bot.telegram.middlewares.in_flight import UpdatesInFlight
from bot.telegram.webhook import WebhookHandler

log = logging.getLogger(__name__)


class StopRequest:
    """Set by SIGTERM or SIGINT (installed at start-up: a stop during start-up waits for it
    to end, then the process leaves without serving)."""

    def __init__(self) -> None:
        self.event = asyncio.Event()
        self.signal_name = ""
        loop = asyncio.get_running_loop()
        for sig in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(sig, self._received, sig)

    def _received(self, sig: signal.Signals) -> None:
        if not self.event.is_set():
            log.info("%s received: stopping", sig.name)
        self.signal_name = sig.name
        self.event.set()

    def is_set(self) -> bool:
        return self.event.is_set()

    async def wait(self) -> None:
        await self.event.wait()


async def _finish(in_flight: UpdatesInFlight, timeout: float) -> None:
    if in_flight.count:
        log.info("finishing %d update(s) in flight (at most %g s)", in_flight.count, timeout)
    left = await in_flight.drain(timeout)
    if left:
        log.warning(
            "%d update(s) still running after %g s are cut short (SHUTDOWN_TIMEOUT_SECONDS)",
            left,
            timeout,
        )


async def serve_polling(
    bot: Bot, dp: Dispatcher, settings: Settings, in_flight: UpdatesInFlight, stop: StopRequest
) -> None:
    """Polling until stopped. Polling confirms an update as soon as it asks for the next
    ones: whatever it took in is finished before the process leaves."""
    await bot.delete_webhook(drop_pending_updates=False)
    polling = asyncio.create_task(
        dp.start_polling(
            bot,
            allowed_updates=dp.resolve_used_update_types(),
            tasks_concurrency_limit=settings.updates_in_flight,
            handle_signals=False,
            close_bot_session=False,  # the updates still running need it; closed at the end
        ),
        name="polling",
    )
    stopped = asyncio.create_task(stop.wait())
    await asyncio.wait({polling, stopped}, return_when=asyncio.FIRST_COMPLETED)
    stopped.cancel()
    if polling.done():  # polling failed on its own: its error is the process's
        await polling
        return
    await dp.stop_polling()
    await polling
    await _finish(in_flight, settings.shutdown_timeout_seconds)


async def serve_webhook(
    bot: Bot, dp: Dispatcher, settings: Settings, in_flight: UpdatesInFlight, stop: StopRequest
) -> None:
    """The webhook server until stopped; then 503 to new updates (Telegram sends them again,
    to another instance or to this one restarted) while the accepted ones finish."""
    secret = settings.webhook_secret.get_secret_value() if settings.webhook_secret else None
    web_app = web.Application()
    handler = WebhookHandler(dp, bot, secret, settings.updates_in_flight)
    handler.register(web_app, path="/webhook")
    setup_application(web_app, dp, bot=bot)
    host, _, port = settings.webhook_listen.rpartition(":")
    # What is left after the drain is cut short at once: the time went to the drain.
    runner = web.AppRunner(web_app, shutdown_timeout=1.0)
    await runner.setup()
    try:
        await web.TCPSite(runner, host or "127.0.0.1", int(port)).start()
        await bot.set_webhook(
            settings.webhook_url.rstrip("/") + "/webhook",  # type: ignore[union-attr]
            secret_token=secret,
            allowed_updates=dp.resolve_used_update_types(),
            max_connections=min(100, settings.updates_in_flight),
        )
        await stop.wait()
        # The webhook stays set: the other instances keep serving it, and this one's
        # successor sets it again.
        handler.stop_accepting()
        await _finish(in_flight, settings.shutdown_timeout_seconds)
    finally:
        await runner.cleanup()
