"""The application's services: the long-lived ones, built once in bot/app.py, and the use
cases of one update, bound to its database session.

Handlers and getters declare what they use as typed parameters (aiogram passes the
dispatcher's and the middlewares' data by name): `translator: Translator`,
`services: UpdateServices`. Dialog callbacks get them through bot/ui/deps.py."""

from __future__ import annotations

from dataclasses import dataclass, field, fields
from typing import Any

from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from bot.communes.service import CommuneService
from bot.consultation import Consultation
from bot.context import AppContext
from bot.delivery.doorbell import OutboxDoorbell
from bot.i18n import Translator
from bot.ideas.service import IdeaService
from bot.members.service import MemberService
from bot.organisers.export_worker import ExportRunner
from bot.results.charts import ChartCache
from bot.results.commentary import CommentaryService
from bot.results.communes import ByCommune
from bot.results.render_worker import ProcessRenderer
from bot.results.service import ResultsCache
from bot.survey.service import SurveyService


@dataclass(frozen=True)
class AppServices:
    """What lives as long as the process; each is in the dispatcher's data under its name."""

    sessionmaker: async_sessionmaker[AsyncSession]
    translator: Translator
    # Results charts per language, rendered off the event loop, kept with their file_ids.
    charts: ChartCache
    # Rung after a commit that queued deliveries: the outbox sends them at once.
    doorbell: OutboxDoorbell
    # The results of the latest data version, computed once per change (/results, the menu).
    results_cache: ResultsCache = field(default_factory=ResultsCache)
    # Exports written by a worker process, off the event loop (/export).
    exports: ExportRunner = field(default_factory=ExportRunner)
    # The charts' drawing process: matplotlib in a thread would hold the GIL for seconds.
    chart_drawer: ProcessRenderer = field(default_factory=ProcessRenderer)

    @classmethod
    def create(cls, sessionmaker: async_sessionmaker[AsyncSession]) -> AppServices:
        drawer = ProcessRenderer()
        translator = Translator()
        charts = ChartCache(render=drawer, render_commune=drawer.commune)

        async def draw_ahead(consultation: Consultation, found: ByCommune) -> None:
            await charts.prepare(found, consultation, translator)

        return cls(
            sessionmaker,
            translator,
            charts,
            OutboxDoorbell(),
            ResultsCache(prepare=draw_ahead),
            ExportRunner(),
            drawer,
        )

    def close(self) -> None:
        """Stop the background work: results refreshes, the worker processes (exports,
        charts) that were started."""
        self.results_cache.cancel()
        self.exports.close()
        self.chart_drawer.close()

    def workflow_data(self) -> dict[str, Any]:
        """The dispatcher's data: each service under its own name (`translator`, …)."""
        return {f.name: getattr(self, f.name) for f in fields(self)}


class UpdateServices:
    """The use cases bound to one database session (an update's, or a scheduler job's), each
    made on first use: an update needs one of them, or none. In the handler data as
    `services` (bot/telegram/middlewares/database.py)."""

    # Made for every update: slots and plain properties (functools.cached_property takes a
    # lock on Python 3.11), so that an update that needs none costs next to nothing.
    __slots__ = (
        "_app",
        "_commentary",
        "_communes",
        "_ideas",
        "_members",
        "_shared",
        "_survey",
        "session",
    )

    def __init__(self, session: AsyncSession, app: AppContext, shared: AppServices) -> None:
        self.session = session
        self._app = app
        self._shared = shared
        self._communes: CommuneService | None = None
        self._ideas: IdeaService | None = None
        self._members: MemberService | None = None
        self._survey: SurveyService | None = None
        self._commentary: CommentaryService | None = None

    def with_session(self, session: AsyncSession) -> UpdateServices:
        """The same use cases over another session (the update's own one was closed)."""
        return UpdateServices(session, self._app, self._shared)

    @property
    def communes(self) -> CommuneService:
        if self._communes is None:
            self._communes = CommuneService(self.session, self._app)
        return self._communes

    @property
    def ideas(self) -> IdeaService:
        if self._ideas is None:
            shared = self._shared
            self._ideas = IdeaService(self.session, self._app, shared.translator, shared.doorbell)
        return self._ideas

    @property
    def members(self) -> MemberService:
        if self._members is None:
            self._members = MemberService(self.session, self._app)
        return self._members

    @property
    def commentary(self) -> CommentaryService:
        if self._commentary is None:
            shared = self._shared
            self._commentary = CommentaryService(
                self.session, self._app, shared.translator, shared.doorbell
            )
        return self._commentary

    @property
    def survey(self) -> SurveyService:
        if self._survey is None:
            self._survey = SurveyService(self.session, self._app.consultation, self._app.clock)
        return self._survey
