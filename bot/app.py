"""Builds the Bot, the Dispatcher with its middlewares and routers, and runs them."""

from __future__ import annotations

import asyncio
import contextlib
import gc
import logging
from dataclasses import dataclass
from datetime import timedelta

from aiogram import Bot, Dispatcher, Router
from aiogram.client.default import DefaultBotProperties
from aiogram.client.telegram import PRODUCTION, TelegramAPIServer
from aiogram.dispatcher.middlewares.error import ErrorsMiddleware
from aiogram.enums import ParseMode
from aiogram.fsm.storage.base import BaseEventIsolation, BaseStorage, DefaultKeyBuilder
from aiogram.fsm.storage.memory import SimpleEventIsolation
from aiogram.types import LinkPreviewOptions
from aiogram_dialog import setup_dialogs
from aiogram_dialog.api.protocols import MessageManagerProtocol
from sqlalchemy.ext.asyncio import AsyncEngine, AsyncSession, async_sessionmaker

from bot.communes.dialog import commune_dialog
from bot.config import Settings
from bot.consultation import Consultation
from bot.context import AppContext, Clock, clock_for
from bot.delivery.instances import Instance, instance_name
from bot.delivery.outbox import Outbox
from bot.delivery.ratelimit import send_limits
from bot.delivery.shared_ratelimit import SharedRateLimit
from bot.ideas import moderation_handlers
from bot.ideas.browse_dialog import ideas_dialog
from bot.ideas.cards import ModeratorDirectory, card_waiting_ideas
from bot.ideas.my_ideas_dialog import my_ideas_dialog
from bot.ideas.submit_dialog import submit_idea_dialog
from bot.members import handlers as member_handlers
from bot.members import membership_handlers, privacy_handlers
from bot.members.language_dialog import language_dialog
from bot.members.service import MemberService
from bot.organisers import export_handlers
from bot.organisers import handlers as organiser_handlers
from bot.organisers.alerts import AdminAlerts
from bot.organisers.announce_dialog import announce_dialog
from bot.phases.scheduler import PhaseEngine
from bot.results import commentary_handlers, report_handlers
from bot.results import handlers as results_handlers
from bot.results.commentary_dialog import commentary_dialog
from bot.services import AppServices
from bot.survey.dialog import survey_dialog
from bot.telegram import lazy_models
from bot.telegram.filters import NotDialogTap
from bot.telegram.middlewares.access import AccessMiddleware
from bot.telegram.middlewares.answer_once import (
    AnswerCallbackOnce,
    AnswerEveryCallback,
    CallbackAnswers,
)
from bot.telegram.middlewares.database import DbSessionMiddleware, EndReadsBeforeTelegram
from bot.telegram.middlewares.in_flight import UpdatesInFlight
from bot.telegram.middlewares.member import MemberMiddleware
from bot.telegram.middlewares.member_turn import MemberTurn
from bot.telegram.middlewares.pinned_responses import PinnedResponseTypes
from bot.telegram.middlewares.poll_pacing import PollPacing
from bot.telegram.middlewares.throttling import ThrottlingMiddleware
from bot.telegram.middlewares.work_slots import WorkSlots
from bot.telegram.model_binding import bind_bot_cheaply
from bot.telegram.serving import StopRequest, serve_polling, serve_webhook
from bot.telegram.session import json_session
from bot.ui import errors
from bot.ui.intent_ids import use_unique_intent_ids
from bot.ui.menu import menu_dialog
from bot.ui.presenters import warm_dates
from storage.db import is_sqlite, make_engine, make_sessionmaker
from storage.dialog_state.sql_storage import SQLStorage
from storage.hot_path.statements import Direct
from storage.pools import PoolBudget

log = logging.getLogger(__name__)
# While updates keep coming and the bot is still handling them, at most one getUpdates per
# 20 ms: under a crowd each poll then brings a batch, and a member waits at most that long for
# the poll that fetches the tap.
POLL_INTERVAL = 0.02
# On a stop, the outbox's sends under way get this long to be answered (each is recorded
# sent, or its claim goes back to the queue: sent again by the next instance, at worst twice).
SENDS_FINISH_WITHIN = 5.0
# An export cut short by the stop gets this long to queue its organiser's notice (one insert;
# the stop as a whole must stay within compose's and systemd's 30 s, README).
EXPORTS_LEAVE_WORD_WITHIN = 1.0


def create_bot(
    settings: Settings,
    answers: CallbackAnswers | None = None,
    in_flight: UpdatesInFlight | None = None,
) -> Bot:
    bind_bot_cheaply()
    api = PRODUCTION
    if settings.telegram_api_url:
        api = TelegramAPIServer.from_base(settings.telegram_api_url.rstrip("/"))
    bot = Bot(
        settings.token(),
        session=json_session(api=api),
        default=DefaultBotProperties(
            parse_mode=ParseMode.HTML, link_preview=LinkPreviewOptions(is_disabled=True)
        ),
    )
    bot.session.middleware(PinnedResponseTypes())
    quiet = in_flight.quiet if in_flight else asyncio.sleep
    bot.session.middleware(PollPacing(POLL_INTERVAL, quiet=quiet))
    bot.session.middleware(AnswerCallbackOnce(answers or CallbackAnswers()))
    bot.session.middleware(EndReadsBeforeTelegram())
    return bot


def pool_budget(settings: Settings) -> PoolBudget | None:
    """This instance's PostgreSQL connections shared among its pools (None on SQLite: a
    file, no server to exhaust)."""
    if settings.database_url.startswith("sqlite"):
        return None
    return PoolBudget.split(
        settings.database_max_connections,
        settings.database_pool_timeout,
        dialogs_in_database=not settings.redis_url,
    )


def create_engine(settings: Settings, budget: PoolBudget | None, part: str) -> AsyncEngine:
    """The engine of one part of the budget (`main`, `dialogs` or `outbox`)."""
    if budget is None:
        return make_engine(settings.database_url)
    if part == "dialogs":
        # The dialogs' statements run on an asyncpg pool of their own (storage/hot_path):
        # the engine itself keeps a single connection.
        engine = make_engine(settings.database_url, **budget.engine_options(part, 1))
        Direct.of(engine).limit(budget.dialogs - 1, budget.timeout)
        return engine
    size = budget.main if part == "main" else budget.outbox
    engine = make_engine(settings.database_url, **budget.engine_options(part, size))
    # Only the main engine has a hot path of its own; elsewhere it uses the engine's pool.
    Direct.of(engine).limit(budget.hot_path if part == "main" else 0, budget.timeout)
    return engine


def create_storage(
    settings: Settings,
    sessionmaker: async_sessionmaker[AsyncSession] | None,
    budget: PoolBudget | None = None,
) -> BaseStorage:
    """`sessionmaker`: the application's; unused with Redis."""
    if settings.redis_url:
        # Imported only with Redis: redis-py costs some 6 MB of memory (SQLite runs without).
        from storage.dialog_state import codec
        from storage.dialog_state.redis_storage import RedisDialogStorage
        from storage.redis_pool import redis_client

        # aiogram-dialog keeps one stack per destiny: the key must include it.
        return RedisDialogStorage(
            redis_client(settings.redis_url),
            key_builder=DefaultKeyBuilder(with_destiny=True),
            json_loads=codec.loads,
            json_dumps=codec.dumps,
        )
    assert sessionmaker is not None
    if is_sqlite(sessionmaker.kw["bind"]):
        # One engine per SQLite file: its write gate must see every writer of the process.
        return SQLStorage(sessionmaker)
    # Its own connection pool: a burst of updates must not starve the dialogs' storage.
    engine = create_engine(settings, budget, "dialogs")
    return SQLStorage(make_sessionmaker(engine), engine=engine)


def create_isolation(settings: Settings, storage: BaseStorage | None = None) -> BaseEventIsolation:
    if settings.redis_url:
        from storage.dialog_state.member_lock import SharedMemberLock
        from storage.dialog_state.redis_storage import RedisDialogStorage
        from storage.redis_pool import redis_client

        # With the Redis dialog storage, the lock reads the member's dialog ahead for it.
        ahead = storage if isinstance(storage, RedisDialogStorage) else None
        return SharedMemberLock(redis_client(settings.redis_url), storage=ahead)
    return SimpleEventIsolation()


def create_dispatcher(
    app: AppContext,
    services: AppServices,
    storage: BaseStorage,
    message_manager: MessageManagerProtocol | None = None,
    answers: CallbackAnswers | None = None,
    in_flight: UpdatesInFlight | None = None,
) -> Dispatcher:
    # One update at a time per member (aiogram-dialog reads and writes the member's stack).
    dp = Dispatcher(
        storage=storage,
        events_isolation=create_isolation(app.settings, storage),
        app=app,
        moderators=ModeratorDirectory(),
        **services.workflow_data(),
    )
    # Ours go before aiogram's FSM middleware, which holds the member's lock for the whole
    # update: every callback is answered and floods are dropped without queueing on it.
    dp.update.outer_middleware.unregister(dp.fsm)
    dp.fsm = MemberTurn(dp.fsm.storage, dp.fsm.events_isolation, dp.fsm.strategy)
    translator = services.translator
    # Outermost: a stopping process waits for every update that got this far.
    dp.update.outer_middleware(in_flight or UpdatesInFlight())
    dp.update.outer_middleware(
        AnswerEveryCallback(
            app, translator, answers or CallbackAnswers(), app.settings.callback_answer_deadline
        )
    )
    dp.update.outer_middleware(
        ThrottlingMiddleware(
            app, translator, app.settings.throttle_rate, app.settings.throttle_burst
        )
    )
    dp.update.outer_middleware(dp.fsm)
    # The error handlers (a stale button draws the menu again) change the member's dialog
    # too: they run within the member's turn, not after its lock is let go, where the next
    # tap would run beside them (tests/test_stale_taps.py). aiogram's own, outermost, still
    # catches what fails before the turn (the lock's Redis unreachable).
    dp.update.outer_middleware(ErrorsMiddleware(dp))
    dp.update.outer_middleware(WorkSlots(app.settings.update_concurrency))
    dp.update.outer_middleware(DbSessionMiddleware(app, services))
    dp.update.outer_middleware(MemberMiddleware(app, translator))
    access = AccessMiddleware(translator)
    dp.message.outer_middleware(access)
    dp.callback_query.outer_middleware(access)
    # aiogram visits routers in order until one handles the update, each visit some
    # microseconds of Python: a dialog's tap (most of the traffic) skips the command and
    # button handlers in one check, and meets the busiest dialogs first. Dialogs match only
    # their own intents, so their order changes nothing else.
    handlers = Router(name="handlers")
    handlers.callback_query.filter(NotDialogTap())
    handlers.include_routers(
        membership_handlers.build_router(),
        member_handlers.build_router(),
        organiser_handlers.build_router(),
        export_handlers.build_router(),
        report_handlers.build_router(),
        results_handlers.build_router(),
        privacy_handlers.build_router(),
        moderation_handlers.build_router(),
        commentary_handlers.build_router(),
    )
    dialogs = Router(name="dialogs")
    dialogs.include_routers(
        survey_dialog(),
        commune_dialog(),
        menu_dialog(),
        ideas_dialog(),
        language_dialog(),
        submit_idea_dialog(),
        my_ideas_dialog(),
        announce_dialog(),
        commentary_dialog(),
    )
    dp.include_routers(
        errors.build_router(), handlers, dialogs, member_handlers.build_fallback_router()
    )
    setup_dialogs(dp, message_manager=message_manager)
    use_unique_intent_ids()
    return dp


@dataclass
class Application:
    app: AppContext
    services: AppServices
    bot: Bot
    dispatcher: Dispatcher
    engine: AsyncEngine
    in_flight: UpdatesInFlight
    budget: PoolBudget | None

    async def close(self) -> None:
        await self.services.exports.stop(EXPORTS_LEAVE_WORD_WITHIN)
        self.services.close()
        await self.dispatcher.storage.close()
        await self.dispatcher.fsm.events_isolation.close()
        await self.bot.session.close()
        await self.engine.dispose()


def build(
    settings: Settings, consultation: Consultation, clock: Clock | None = None
) -> Application:
    clock = clock or clock_for(settings)
    budget = pool_budget(settings)
    engine = create_engine(settings, budget, "main")
    app = AppContext(settings=settings, consultation=consultation, clock=clock)
    services = AppServices.create(make_sessionmaker(engine))
    answers = CallbackAnswers()
    in_flight = UpdatesInFlight()
    bot = create_bot(settings, answers, in_flight)
    storage = create_storage(settings, services.sessionmaker, budget)
    dispatcher = create_dispatcher(app, services, storage, answers=answers, in_flight=in_flight)
    return Application(app, services, bot, dispatcher, engine, in_flight, budget)


async def run(settings: Settings, consultation: Consultation) -> None:
    stop = StopRequest()
    application = build(settings, consultation)
    bot, dp, app = application.bot, application.dispatcher, application.app
    services, budget = application.services, application.budget
    # The sender has its own pool too, so a burst of updates cannot stall a broadcast
    # (on SQLite the same engine: one write gate for the whole process).
    single = is_sqlite(application.engine)
    outbox_engine = application.engine if single else create_engine(settings, budget, "outbox")
    outbox_sessions = make_sessionmaker(outbox_engine)
    limits = send_limits(settings)
    shared = (
        SharedRateLimit.from_url(settings.redis_url, limits, settings.token().split(":")[0])
        if settings.redis_url
        else None
    )
    outbox = Outbox(
        outbox_sessions,
        bot,
        limits,
        clock=app.clock,
        on_photo_uploaded=services.charts.remember,
        instance=Instance(
            outbox_sessions,
            instance_name(settings),
            timedelta(seconds=settings.instance_timeout_seconds),
            app.clock,
        ),
        max_age=timedelta(hours=settings.outbox_max_age_hours),
        alerts=AdminAlerts(app, services.translator),
        shared=shared,
        # The services' doorbell: their commits wake this sender.
        doorbell=services.doorbell,
    )
    engine = PhaseEngine(app, services)
    sender: asyncio.Task[None] | None = None
    if budget is not None:
        log.info(
            "PostgreSQL connections: at most %d (updates %d, hot path %d, dialogs %d, outbox %d)",
            budget.total,
            budget.main,
            budget.hot_path,
            budget.dialogs,
            budget.outbox,
        )
    try:
        me = await bot.get_me()
        app.bot_username = me.username or ""
        log.info("running as @%s for consultation %s", app.bot_username, consultation.id)
        await MemberService.publish_commands(bot, app, services.translator)
        async with services.sessionmaker() as session:  # ideas left without a card (no group)
            await card_waiting_ideas(session, app, services.translator, app.clock())
            await session.commit()
        sender = asyncio.create_task(outbox.run(), name="outbox")
        await engine.start()
        await Direct.of(application.engine).open()
        services.results_cache.warm(application.engine, consultation, app.clock())
        if settings.redis_url:
            from storage.dialog_state.member_lock import SharedMemberLock

            if isinstance(isolation := dp.fsm.events_isolation, SharedMemberLock):
                await isolation.open()
        results = lazy_models.warm_up()
        warm_dates(consultation)
        for middleware in bot.session.middleware:
            if isinstance(middleware, PinnedResponseTypes):
                middleware.hold(results)
        # What start-up built (modules, catalogs, the consultation, pydantic's models) lives as
        # long as the process: out of the collector's sight, a full collection no longer
        # stalls every member for ~150 ms in the middle of a crowd.
        gc.collect()
        gc.freeze()
        serve = serve_webhook if settings.webhook_url else serve_polling
        if not stop.is_set():
            await serve(bot, dp, settings, application.in_flight, stop)
    finally:
        engine.shutdown()
        if sender is not None:
            await _stop_sender(sender, outbox)
        await application.close()
        if not single:
            await outbox_engine.dispose()
        if shared is not None:
            await shared.close()
    log.info("stopped cleanly")


async def _stop_sender(sender: asyncio.Task[None], outbox: Outbox) -> None:
    """The sender finishes the sends under way and hands its other claims back (and this
    instance's row goes); a send Telegram keeps waiting is given up, its claim handed back."""
    sender.cancel()
    done, _ = await asyncio.wait({sender}, timeout=SENDS_FINISH_WITHIN)
    if not done:
        log.warning("outbox: sends still waiting on Telegram are given up; queued again")
        for task in list(outbox.tasks):
            task.cancel()
        await asyncio.wait({sender}, timeout=SENDS_FINISH_WITHIN)
    if outbox.instance.registered:
        with contextlib.suppress(Exception):
            await outbox.instance.retire()
