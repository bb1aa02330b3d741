"""SQLAlchemy models. Plain data: nothing here knows about Telegram."""

from __future__ import annotations

from datetime import UTC, datetime

from sqlalchemy import (
    JSON,
    BigInteger,
    Boolean,
    DateTime,
    ForeignKey,
    Index,
    Integer,
    LargeBinary,
    MetaData,
    String,
    Text,
    TypeDecorator,
    UniqueConstraint,
)
from sqlalchemy.engine import Dialect
from sqlalchemy.orm import DeclarativeBase, Mapped, mapped_column, relationship

NAMING = {
    "ix": "ix_%(column_0_label)s",
    "uq": "uq_%(table_name)s_%(column_0_name)s",
    "ck": "ck_%(table_name)s_%(constraint_name)s",
    "fk": "fk_%(table_name)s_%(column_0_name)s_%(referred_table_name)s",
    "pk": "pk_%(table_name)s",
}


def utcnow() -> datetime:
    return datetime.now(UTC)


class UtcDateTime(TypeDecorator[datetime]):
    """Aware UTC datetimes on every backend (SQLite keeps no offset: store UTC, read it back)."""

    impl = DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError("naive datetime given to a UTC column")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


class Base(DeclarativeBase):
    metadata = MetaData(naming_convention=NAMING)


class Member(Base):
    __tablename__ = "members"

    id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    first_name: Mapped[str] = mapped_column(String(128), default="")
    language: Mapped[str | None] = mapped_column(String(8))
    blocked: Mapped[bool] = mapped_column(Boolean, default=False)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # The commune's id in the consultation file; NULL with commune_answered_at set: the member
    # preferred not to say. commune_answered_at NULL: never asked (nor told by an invitation).
    commune: Mapped[str | None] = mapped_column(String(32))
    commune_answered_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    roles: Mapped[list[MemberRole]] = relationship(cascade="all, delete-orphan", lazy="selectin")

    @property
    def role_names(self) -> set[str]:
        return {r.role for r in self.roles}


class MemberRole(Base):
    __tablename__ = "member_roles"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    role: Mapped[str] = mapped_column(String(16), primary_key=True, index=True)


class Response(Base):
    """One member's survey response: a draft until submitted, editable while the survey is open."""

    __tablename__ = "responses"
    __table_args__ = (
        UniqueConstraint("consultation_id", "member_id"),
        # The results' data version (storage/repositories/tallies.py): index-only reads.
        Index("ix_responses_submitted", "consultation_id", "status", "updated_at"),
        # The export's pages, in submission order (storage/repositories/export.py).
        Index("ix_responses_export", "consultation_id", "status", "submitted_at", "id"),
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[str] = mapped_column(String(64))
    member_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"), index=True)
    status: Mapped[str] = mapped_column(String(16), default="draft")
    submitted_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    updated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, onupdate=utcnow)


class QuestionAnswer(Base):
    """A question the member confirmed (seen and answered), with free text if any."""

    __tablename__ = "question_answers"

    response_id: Mapped[int] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    text: Mapped[str | None] = mapped_column(Text)


class AnswerChoice(Base):
    """One chosen option; one row per choice so results aggregate in SQL."""

    __tablename__ = "answer_choices"

    response_id: Mapped[int] = mapped_column(
        ForeignKey("responses.id", ondelete="CASCADE"), primary_key=True
    )
    question_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    option_id: Mapped[str] = mapped_column(String(32), primary_key=True)


class TallyCount(Base):
    """The submitted responses counted as they change, per commune of their authors: kept by
    the database's own triggers (migration 0015), so that results read a few hundred rows
    instead of counting every answer. `commune` '' stands for none given. Rows: question_id ''
    (option_id ''): respondents; option_id '': respondents who answered the question; '*':
    those who wrote a free text; an option's id: those who chose it. Ids never hold '' or '*'
    (bot/consultation/model.py's ID_PATTERN)."""

    __tablename__ = "tally_counts"

    consultation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    commune: Mapped[str] = mapped_column(String(32), primary_key=True)
    question_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    option_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    n: Mapped[int] = mapped_column(Integer)


class Invitation(Base):
    __tablename__ = "invitations"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    token_hash: Mapped[str] = mapped_column(String(64), unique=True)
    role: Mapped[str] = mapped_column(String(16))
    max_uses: Mapped[int | None] = mapped_column(Integer)
    used: Mapped[int] = mapped_column(Integer, default=0)
    expires_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Set by `consultbot invite revoke`: the link grants nothing from then on.
    revoked_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # Those who use it live there: they are not asked for their commune.
    commune: Mapped[str | None] = mapped_column(String(32))


class InvitationUse(Base):
    __tablename__ = "invitation_uses"

    invitation_id: Mapped[int] = mapped_column(
        ForeignKey("invitations.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    used_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class FsmRecord(Base):
    """aiogram FSM state and data (aiogram-dialog's stacks and contexts live here)."""

    __tablename__ = "fsm_records"

    key: Mapped[str] = mapped_column(String(255), primary_key=True)
    state: Mapped[str | None] = mapped_column(String(255))
    data: Mapped[str | None] = mapped_column(Text)


class PhaseTransition(Base):
    """A transition that happened: the unique key makes it happen once, across instances."""

    __tablename__ = "phase_transitions"

    key: Mapped[str] = mapped_column(String(128), primary_key=True)
    scheduled_at: Mapped[datetime] = mapped_column(UtcDateTime())
    done_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    outcome: Mapped[str] = mapped_column(String(32), default="done")
    # done | failed (a failed one is retried at next_attempt_at; later ones do not wait for it)
    status: Mapped[str] = mapped_column(String(16), default="done", server_default="done")
    attempts: Mapped[int] = mapped_column(Integer, default=0, server_default="0")
    next_attempt_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    error: Mapped[str | None] = mapped_column(String(255))


class Instance(Base):
    """A running bot process: its token owns outbox claims; a stale heartbeat means it is gone."""

    __tablename__ = "instances"

    token: Mapped[str] = mapped_column(String(32), primary_key=True)
    # Stable across restarts of the same deployment slot (host + listen port): a process that
    # starts under the name of a registered one replaces it, so its claims are taken over at once.
    name: Mapped[str] = mapped_column(String(128), index=True)
    started_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    heartbeat_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class OutboxMedia(Base):
    """A file sent to many chats: uploaded once, then re-sent by its Telegram file_id."""

    __tablename__ = "outbox_media"

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    filename: Mapped[str] = mapped_column(String(64))
    data: Mapped[bytes] = mapped_column(LargeBinary)
    file_id: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Delivery(Base):
    """One message that must not be lost; the sender moves it pending -> sent/failed/blocked."""

    __tablename__ = "deliveries"
    # AUTOINCREMENT: an erased member's deliveries are deleted; ids are named by
    # `consultbot outbox retry ID` and by moderation cards.
    __table_args__ = (
        Index("ix_deliveries_due", "status", "next_attempt_at"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    dedupe_key: Mapped[str] = mapped_column(String(160), unique=True)
    topic: Mapped[str] = mapped_column(String(64), index=True)
    chat_id: Mapped[int] = mapped_column(BigInteger, index=True)
    is_group: Mapped[bool] = mapped_column(Boolean, default=False)
    text: Mapped[str | None] = mapped_column(Text)
    media_id: Mapped[int | None] = mapped_column(ForeignKey("outbox_media.id", ondelete="SET NULL"))
    reply_markup: Mapped[str | None] = mapped_column(Text)
    # Messages as Telegram counts them for its flood limits: each photo of an album counts.
    weight: Mapped[int] = mapped_column(Integer, default=1, server_default="1")
    status: Mapped[str] = mapped_column(String(16), default="pending")
    attempts: Mapped[int] = mapped_column(Integer, default=0)
    next_attempt_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    claimed_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    claimed_by: Mapped[str | None] = mapped_column(String(32), index=True)
    # Since when transient errors keep it from leaving: retries stop after OUTBOX_MAX_AGE_HOURS.
    failing_since: Mapped[datetime | None] = mapped_column(UtcDateTime())
    sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    message_id: Mapped[int | None] = mapped_column(BigInteger)
    error: Mapped[str | None] = mapped_column(String(255))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Idea(Base):
    __tablename__ = "ideas"
    # AUTOINCREMENT: an id travels in buttons, links and dedupe keys; SQLite would reuse it.
    __table_args__ = (
        Index("ix_ideas_project_status", "consultation_id", "project_id", "status"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    consultation_id: Mapped[str] = mapped_column(String(64))
    project_id: Mapped[str] = mapped_column(String(32))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    author_name: Mapped[str] = mapped_column(String(128), default="")
    title: Mapped[str] = mapped_column(String(200))
    text: Mapped[str] = mapped_column(Text)
    # pending | approved | rejected | withdrawn | hidden
    status: Mapped[str] = mapped_column(String(16), default="pending")
    reject_reason: Mapped[str | None] = mapped_column(String(32))
    decided_by: Mapped[int | None] = mapped_column(BigInteger)
    decided_by_name: Mapped[str | None] = mapped_column(String(128))
    decided_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    supports: Mapped[int] = mapped_column(Integer, default=0)
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    # Set when the author erased their data: title and text are blanked, the thread stays.
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # The author's commune when they submitted it (a change of theirs later does not move the
    # idea); blanked with title and text when they erase their data.
    commune: Mapped[str | None] = mapped_column(String(32))


class Support(Base):
    __tablename__ = "supports"

    idea_id: Mapped[int] = mapped_column(
        ForeignKey("ideas.id", ondelete="CASCADE"), primary_key=True
    )
    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class Comment(Base):
    __tablename__ = "comments"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    idea_id: Mapped[int] = mapped_column(ForeignKey("ideas.id", ondelete="CASCADE"), index=True)
    parent_id: Mapped[int | None] = mapped_column(ForeignKey("comments.id", ondelete="CASCADE"))
    author_id: Mapped[int | None] = mapped_column(
        ForeignKey("members.id", ondelete="SET NULL"), index=True
    )
    author_name: Mapped[str] = mapped_column(String(128), default="")
    text: Mapped[str] = mapped_column(Text)
    hidden: Mapped[bool] = mapped_column(Boolean, default=False)
    hidden_by: Mapped[int | None] = mapped_column(BigInteger)
    hidden_by_name: Mapped[str | None] = mapped_column(String(128))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    erased_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    # When its moderation card was queued (cards are batched; NULL = still to be carded).
    carded_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class Report(Base):
    __tablename__ = "reports"
    # AUTOINCREMENT: a report's id is in its card's dedupe key, and /forget deletes reports.
    __table_args__ = (
        UniqueConstraint("target", "target_id", "reporter_id"),
        {"sqlite_autoincrement": True},
    )

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    target: Mapped[str] = mapped_column(String(16))  # idea | comment
    target_id: Mapped[int] = mapped_column(Integer)
    reporter_id: Mapped[int] = mapped_column(ForeignKey("members.id", ondelete="CASCADE"))
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class NotificationState(Base):
    """Per recipient and idea: when we last notified, and what happened since (grouping)."""

    __tablename__ = "notification_states"

    member_id: Mapped[int] = mapped_column(
        ForeignKey("members.id", ondelete="CASCADE"), primary_key=True
    )
    idea_id: Mapped[int] = mapped_column(
        ForeignKey("ideas.id", ondelete="CASCADE"), primary_key=True
    )
    last_sent_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    pending_comments: Mapped[int] = mapped_column(Integer, default=0)
    pending_replies: Mapped[int] = mapped_column(Integer, default=0)


class AuditEntry(Base):
    """Who did what, when, on what: moderation, roles, invitations, announcements, erasures."""

    __tablename__ = "audit_log"
    __table_args__ = ({"sqlite_autoincrement": True},)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow, index=True)
    actor_id: Mapped[int | None] = mapped_column(BigInteger, index=True)
    actor_name: Mapped[str | None] = mapped_column(String(128))
    action: Mapped[str] = mapped_column(String(32))
    target: Mapped[str | None] = mapped_column(String(16))
    target_id: Mapped[str | None] = mapped_column(String(64))
    detail: Mapped[str | None] = mapped_column(String(255))


class ResultsCommentary(Base):
    """The results phase's commentary: the file's draft, then the organisers' edits, until one
    of them approves a version. Texts are HTML per language; no organiser is named here (the
    audit log says who did what)."""

    __tablename__ = "results_commentaries"

    consultation_id: Mapped[str] = mapped_column(String(64), primary_key=True)
    phase_id: Mapped[str] = mapped_column(String(32), primary_key=True)
    # 1 is the file's draft; every edit adds one (buttons carry it: an older one is stale).
    version: Mapped[int] = mapped_column(Integer, default=1)
    texts: Mapped[dict[str, str]] = mapped_column(JSON, default=dict)
    # Per language, the version whose edit last wrote its text (older than the source
    # language's: a translation kept while the source changed).
    written: Mapped[dict[str, int]] = mapped_column(JSON, default=dict)
    status: Mapped[str] = mapped_column(String(16), default="draft")  # draft | approved
    created_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)
    edited_at: Mapped[datetime | None] = mapped_column(UtcDateTime())
    approved_at: Mapped[datetime | None] = mapped_column(UtcDateTime())


class ChatMigration(Base):
    """A group Telegram upgraded to a supergroup: its new id, used from then on (e.g. for
    MODERATION_CHAT_ID, which still names the old one)."""

    __tablename__ = "chat_migrations"

    old_chat_id: Mapped[int] = mapped_column(BigInteger, primary_key=True, autoincrement=False)
    new_chat_id: Mapped[int] = mapped_column(BigInteger)
    migrated_at: Mapped[datetime] = mapped_column(UtcDateTime(), default=utcnow)


class ModerationCard(Base):
    """What a moderation card (an outbox delivery to the group) may act on: its buttons are
    honoured only on the message it was posted as, i.e. the delivery's chat and message id
    once sent. A restored backup or a reused id cannot make an old card act on something
    else. One row per idea or comment the card carries buttons for."""

    __tablename__ = "moderation_cards"
    __table_args__ = (Index("ix_moderation_cards_target", "target", "target_id"),)

    delivery_id: Mapped[int] = mapped_column(
        ForeignKey("deliveries.id", ondelete="CASCADE"), primary_key=True
    )
    target: Mapped[str] = mapped_column(String(16), primary_key=True)  # idea | comment
    target_id: Mapped[int] = mapped_column(Integer, primary_key=True, autoincrement=False)


class QuotaEvent(Base):
    """One idea, comment or report counted against a quota. `actor` is a keyed hash of the
    Telegram id (bot/ideas/quotas.py), not the member: it survives /forget, so erasing and
    registering again does not reset a quota; rows older than the longest window are deleted."""

    __tablename__ = "quota_events"
    __table_args__ = (Index("ix_quota_events_actor", "actor", "kind", "at"),)

    id: Mapped[int] = mapped_column(Integer, primary_key=True)
    actor: Mapped[str] = mapped_column(String(64))
    kind: Mapped[str] = mapped_column(String(16))
    at: Mapped[datetime] = mapped_column(UtcDateTime(), index=True)
