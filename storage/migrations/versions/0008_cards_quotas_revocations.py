"""moderation cards recorded, quota events, revocable invitations, report and delivery ids
never reused

Revision ID: 0008
Revises: 0007
"""

import json
import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# The buttons of the cards already posted (bot/ideas/cards.py's callback data factories):
# mi:<action>:<idea>:<reason> and mc:hide:<comment>.
CARD_BUTTON = re.compile(r"^(mi|mc):[a-z]+:(\d+)(?::|$)")
REPORT_KEY = re.compile(r":report:(?:idea|comment):\d+:(\d+)$")


def _sqlite_autoincrement(table: str, seed: int) -> None:
    """Rebuild as AUTOINCREMENT (SQLite cannot alter that), continuing above `seed`."""
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ):
        pass
    bind = op.get_bind()
    highest = max(seed, bind.scalar(sa.text(f"SELECT MAX(id) FROM {table}")) or 0)
    if highest:
        bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
        bind.execute(
            sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :seq)"),
            {"t": table, "seq": highest},
        )


def _highest_report_in_keys() -> int:
    """Report ids that left in dedupe keys: a new report must not take one of them."""
    highest = 0
    rows = op.get_bind().execute(
        sa.text("SELECT dedupe_key FROM deliveries WHERE dedupe_key LIKE '%:report:%'")
    )
    for (key,) in rows:
        found = REPORT_KEY.search(key or "")
        if found:
            highest = max(highest, int(found.group(1)))
    return highest


def _backfill_cards() -> None:
    """Cards posted before this revision: their targets read from their own buttons."""
    bind = op.get_bind()
    rows = bind.execute(
        sa.text(
            "SELECT id, reply_markup FROM deliveries "
            "WHERE is_group AND reply_markup IS NOT NULL"
        )
    )
    cards: set[tuple[int, str, int]] = set()
    for delivery_id, markup in rows:
        try:
            keyboard = json.loads(markup).get("inline_keyboard", [])
        except (ValueError, AttributeError):
            continue
        for row in keyboard:
            for button in row:
                found = CARD_BUTTON.match(str(button.get("callback_data") or ""))
                if found:
                    target = "idea" if found.group(1) == "mi" else "comment"
                    cards.add((delivery_id, target, int(found.group(2))))
    if cards:
        bind.execute(
            sa.text(
                "INSERT INTO moderation_cards (delivery_id, target, target_id) "
                "VALUES (:d, :t, :i)"
            ),
            [{"d": d, "t": t, "i": i} for d, t, i in sorted(cards)],
        )


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # As in 0004: a rebuild with foreign keys on would cascade-delete the children.
        if bind.scalar(sa.text("PRAGMA foreign_keys")):
            raise RuntimeError("0008 must run with PRAGMA foreign_keys=OFF on SQLite")
        _sqlite_autoincrement("reports", _highest_report_in_keys())
        _sqlite_autoincrement("deliveries", 0)
    # PostgreSQL sequences never hand out an id twice: nothing to do there.

    with op.batch_alter_table("invitations") as batch:
        batch.add_column(sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True))

    op.create_table(
        "moderation_cards",
        sa.Column("delivery_id", sa.Integer(), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=False),
        sa.Column("target_id", sa.Integer(), autoincrement=False, nullable=False),
        sa.ForeignKeyConstraint(
            ["delivery_id"],
            ["deliveries.id"],
            name=op.f("fk_moderation_cards_delivery_id_deliveries"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint(
            "delivery_id", "target", "target_id", name=op.f("pk_moderation_cards")
        ),
    )
    with op.batch_alter_table("moderation_cards") as batch:
        batch.create_index("ix_moderation_cards_target", ["target", "target_id"], unique=False)
    _backfill_cards()

    op.create_table(
        "quota_events",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("actor", sa.String(length=64), nullable=False),
        sa.Column("kind", sa.String(length=16), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_quota_events")),
    )
    with op.batch_alter_table("quota_events") as batch:
        batch.create_index("ix_quota_events_actor", ["actor", "kind", "at"], unique=False)
        batch.create_index(batch.f("ix_quota_events_at"), ["at"], unique=False)

    if bind.dialect.name == "sqlite":
        problems = bind.execute(sa.text("PRAGMA foreign_key_check")).fetchall()
        if problems:
            raise RuntimeError(f"foreign keys broken by the rebuild: {problems[:5]}")


def downgrade() -> None:
    op.drop_table("quota_events")
    op.drop_table("moderation_cards")
    with op.batch_alter_table("invitations") as batch:
        batch.drop_column("revoked_at")
