"""A member's commune: asked once before the first question (unless an invitation said it),
changed from the menu until the survey closes; "rather not say" is an answer too."""

from __future__ import annotations

from datetime import datetime
from enum import StrEnum

from sqlalchemy.ext.asyncio import AsyncSession

from bot.communes.lookup import CommuneDirectory, Matches
from bot.consultation import PhaseKind, Role
from bot.context import AppContext
from storage.repositories.communes import CommuneRepository, MemberCommune
from storage.repositories.members import MemberRecord
from storage.repositories.survey import members_without_submission


class Choice(StrEnum):
    SAVED = "saved"
    UNKNOWN = "unknown"  # not one of the consultation's communes (a forged or stale button)
    CLOSED = "closed"  # the survey is over: the commune of its answers stays as it was


class CommuneService:
    def __init__(self, session: AsyncSession, app: AppContext) -> None:
        self.session = session
        self.app = app
        self.repo = CommuneRepository(session)

    @property
    def directory(self) -> CommuneDirectory:
        return self.app.communes

    def offered(self) -> bool:
        """Whether the consultation lists communes at all (none: the bot never asks)."""
        return bool(self.directory)

    def may_change(self, now: datetime) -> bool:
        """Until the survey closes: a commune describes the answers, which are final then."""
        if not self.offered():
            return False
        survey = self.app.consultation.phase(PhaseKind.SURVEY)
        return survey is None or now <= survey.ends

    async def may_change_for(self, member: MemberRecord, now: datetime) -> bool:
        """`may_change`; and, after the survey, for an official who did not answer it: their
        commune says whose results they get beside the network's, and describes no answer."""
        if self.may_change(now):
            return True
        if not self.offered() or Role.OFFICIAL not in member.role_names:
            return False
        c = self.app.consultation
        return bool(await members_without_submission(self.session, c.id, [member.id]))

    async def official_needs_asking(self, member: MemberRecord, now: datetime) -> bool:
        """An official never asked (nor told by their invitation), who may still say it: asked
        when they first open the results, which depend on it."""
        return (
            Role.OFFICIAL in member.role_names
            and await self.needs_asking(member.id)
            and await self.may_change_for(member, now)
        )

    async def of_member(self, member_id: int) -> MemberCommune:
        """As committed: read by the dialogs, after any update that changed it."""
        return await self.repo.committed(member_id)

    async def needs_asking(self, member_id: int) -> bool:
        return self.offered() and not (await self.repo.committed(member_id)).answered

    def search(self, query: str) -> Matches:
        return self.directory.search(query)

    async def choose(self, member: MemberRecord, commune_id: str | None, now: datetime) -> Choice:
        """The member's answer: a commune's id, or None for "rather not say"."""
        member_id = member.id
        if not await self.may_change_for(member, now):
            return Choice.CLOSED
        if commune_id is not None and self.directory.get(commune_id) is None:
            return Choice.UNKNOWN
        await self.repo.save(member_id, commune_id, now)
        return Choice.SAVED

    async def from_invitation(
        self, member_id: int, commune_id: str, now: datetime, first_use: bool
    ) -> None:
        """The invitation's commune (the caller commits). A link used again does not undo a
        change the member made since; a commune the file no longer lists is ignored."""
        if self.directory.get(commune_id) is None:
            return
        if first_use:
            await self.repo.set(member_id, commune_id, now)
        else:
            await self.repo.set_if_unanswered(member_id, commune_id, now)
