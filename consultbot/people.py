"""`consultbot invite list|revoke` and `consultbot role list|revoke`: who may do what, and
taking it back (audited)."""

from __future__ import annotations

import argparse
import asyncio

from bot.config import Settings, load_settings
from bot.consultation import Role
from consultbot.common import Failure, require_schema


async def invitations(settings: Settings, action: str, invitation: str | None) -> str:
    """`invite list`, `invite revoke ID`."""
    from datetime import UTC, datetime

    from bot.members.invitations import revoke_invitation
    from storage.db import make_engine, make_sessionmaker
    from storage.repositories.invitations import InvitationRepository

    if action == "revoke" and (invitation is None or not invitation.isdigit()):
        raise Failure("invite revoke: give the invitation's id (see `consultbot invite list`)")
    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            if action == "revoke":
                assert invitation is not None
                found = await revoke_invitation(
                    session, int(invitation), datetime.now(UTC), cli_actor()
                )
                if found is None:
                    raise Failure(f"no invitation {invitation} (see `consultbot invite list`)")
                return (
                    f"invitation {found.id} ({found.role}, used {found.used} time(s)) revoked: "
                    "its link grants nothing from now on; roles already given stay "
                    "(`consultbot role revoke MEMBER ROLE`)"
                )
            rows = await InvitationRepository(session).all()
    finally:
        await engine.dispose()
    if not rows:
        return "no invitations"
    lines = ["id\trole\tused\tuses\texpires\tcreated\tstate"]
    for i in rows:
        expires = f"{i.expires_at:%Y-%m-%d %H:%M}" if i.expires_at else "never"
        state = f"revoked {i.revoked_at:%Y-%m-%d %H:%M}" if i.revoked_at else "active"
        lines.append(
            f"{i.id}\t{i.role}\t{i.used}\t{i.max_uses or '∞'}\t{expires}\t"
            f"{i.created_at:%Y-%m-%d %H:%M}\t{state}"
        )
    return "\n".join(lines)


def cli_actor() -> str:
    """Who acts from the command line, for the audit log."""
    import getpass

    try:
        return f"command line ({getpass.getuser()})"
    except OSError:  # no login name (a container without a passwd entry)
        return "command line"


def cmd_role(args: argparse.Namespace) -> None:
    settings = load_settings()
    require_schema(settings)
    if args.action == "revoke":
        if args.member is None or args.role is None:
            raise Failure("role revoke: give the member's Telegram id and the role")
        if args.role == "organiser":
            raise Failure(
                "organisers are the ids in ADMIN_IDS: remove the id there and restart the bot"
            )
    print(asyncio.run(roles(settings, args.action, args.member, args.role)))


async def roles(settings: Settings, action: str, member: int | None, role: str | None) -> str:
    from datetime import UTC, datetime

    from bot.members.invitations import revoke_role
    from storage.db import make_engine, make_sessionmaker
    from storage.repositories.members import MemberRepository

    engine = make_engine(settings.database_url)
    try:
        async with make_sessionmaker(engine)() as session:
            if action == "revoke":
                assert member is not None and role is not None
                if not await revoke_role(
                    session, member, Role(role), datetime.now(UTC), cli_actor()
                ):
                    raise Failure(f"member {member} does not hold the role {role}: nothing done")
                return (
                    f"member {member} is no longer {role}: it takes effect at their next "
                    "message or tap"
                )
            rows = await MemberRepository(session).with_roles()
    finally:
        await engine.dispose()
    if not rows:
        return "nobody holds a role"
    return "\n".join(f"{member_id}\t{role}\t{name}" for member_id, name, role in rows)
