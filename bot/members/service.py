"""Member use cases: language, invitations, who may do what."""

from __future__ import annotations

import logging

from aiogram import Bot
from aiogram.exceptions import TelegramAPIError
from aiogram.types import BotCommand, BotCommandScopeAllPrivateChats, BotCommandScopeChat
from sqlalchemy.ext.asyncio import AsyncSession

from bot.communes.service import CommuneService
from bot.consultation import Role
from bot.context import AppContext
from bot.i18n import N_, Translator
from bot.members.invitations import redeem
from bot.organisers import audit
from storage.repositories.audit import AuditRepository
from storage.repositories.invitations import Redeem, Redemption
from storage.repositories.members import MemberRecord, MemberRepository

log = logging.getLogger(__name__)

# (command, French description: a msgid of the catalogs)
MEMBER_COMMANDS = [
    ("start", N_("Menu principal")),
    ("language", N_("Changer de langue")),
    ("results", N_("Résultats du sondage")),
    ("help", N_("Aide et calendrier")),
    ("mydata", N_("Mes données personnelles")),
    ("forget", N_("Effacer mes données")),
]
ADMIN_COMMANDS = [
    ("status", N_("État de la consultation")),
    ("announce", N_("Envoyer une annonce")),
    ("pending", N_("Idées en attente")),
    ("audit", N_("Journal des décisions")),
    ("export", N_("Exporter les données")),
]


class MemberService:
    def __init__(self, session: AsyncSession, app: AppContext) -> None:
        self.session = session
        self.app = app
        self.repo = MemberRepository(session)

    async def set_language(self, member: MemberRecord, language: str) -> None:
        await self.repo.set_language(member, language)
        await self.session.commit()

    async def use_invitation(self, member: MemberRecord, token: str) -> Redemption:
        now = self.app.clock()
        outcome = await redeem(self.session, token, member.id, now)
        if outcome.outcome == Redeem.OK:
            await AuditRepository(self.session).record(
                now,
                audit.Action.INVITATION_USED,
                member.id,
                member.first_name,
                "member",
                member.id,
                f"role={outcome.role}",
            )
        if outcome.outcome in (Redeem.OK, Redeem.ALREADY) and outcome.commune:
            await CommuneService(self.session, self.app).from_invitation(
                member.id, outcome.commune, now, first_use=outcome.outcome == Redeem.OK
            )
        # Only a new use grants: a role revoked since does not come back through the old link.
        if outcome.outcome == Redeem.OK and outcome.role:
            if await self.repo.add_role(member, outcome.role):
                await AuditRepository(self.session).record(
                    now,
                    audit.Action.ROLE,
                    member.id,
                    member.first_name,
                    "member",
                    member.id,
                    f"+{outcome.role} (invitation)",
                )
        await self.session.commit()
        return outcome

    def may_answer(self, member: MemberRecord | None) -> bool:
        if member is None:
            return False
        if self.app.consultation.access == "open" or self.app.is_admin(member.id):
            return True
        return Role.AMBASSADOR in member.role_names

    def has_access(self, member: MemberRecord | None) -> bool:
        if member is None:
            return False
        return (
            self.app.consultation.access == "open"
            or self.app.is_admin(member.id)
            or bool(member.role_names)
        )

    @staticmethod
    def commands(translator: Translator, lang: str, admin: bool = False) -> list[BotCommand]:
        pairs = MEMBER_COMMANDS + (ADMIN_COMMANDS if admin else [])
        return [
            BotCommand(command=name, description=translator.gettext(desc, locale=lang))
            for name, desc in pairs
        ]

    @staticmethod
    async def publish_commands(bot: Bot, app: AppContext, translator: Translator) -> None:
        """The command menu per language, and the admins' longer one."""
        scope = BotCommandScopeAllPrivateChats()
        source = app.consultation.source_language
        await bot.set_my_commands(MemberService.commands(translator, source), scope=scope)
        for lang in app.languages:
            await bot.set_my_commands(
                MemberService.commands(translator, lang), scope=scope, language_code=lang
            )
        for admin_id in app.settings.admin_ids:
            await MemberService.set_chat_commands(bot, app, translator, admin_id, source)

    @staticmethod
    async def set_chat_commands(
        bot: Bot, app: AppContext, translator: Translator, chat_id: int, lang: str
    ) -> None:
        try:
            await bot.set_my_commands(
                MemberService.commands(translator, lang, admin=app.is_admin(chat_id)),
                scope=BotCommandScopeChat(chat_id=chat_id),
            )
        except TelegramAPIError as exc:  # an admin who never opened the chat
            log.info("could not set commands for chat %s: %s", chat_id, exc)
