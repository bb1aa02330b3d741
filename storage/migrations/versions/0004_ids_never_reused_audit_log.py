"""ids never reused (SQLite AUTOINCREMENT), erasure marks, batched comment cards, audit log

Revision ID: 0004
Revises: 0003
"""

import re
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# Ids that left the database in dedupe keys (cards, decisions, reports): the next id must be above.
KEY_IDS = {
    "ideas": re.compile(r":(?:card:idea|decision|report:idea):(\d+)"),
    "comments": re.compile(r":(?:card:comment|report:comment):(\d+)"),
}


def _sqlite_recreate(table: str, columns: list[sa.Column]) -> None:
    """Rebuild the table as AUTOINCREMENT (SQLite cannot alter that), keeping every row."""
    with op.batch_alter_table(
        table, recreate="always", table_kwargs={"sqlite_autoincrement": True}
    ) as batch:
        for column in columns:
            batch.add_column(column)


def _seed_sqlite_sequence(table: str) -> None:
    """AUTOINCREMENT continues above the highest id ever handed out, not only the ones left."""
    bind = op.get_bind()
    highest = bind.scalar(sa.text(f"SELECT MAX(id) FROM {table}")) or 0
    for (key,) in bind.execute(sa.text("SELECT dedupe_key FROM deliveries")):
        for found in KEY_IDS[table].findall(key or ""):
            highest = max(highest, int(found))
    if not highest:
        return
    bind.execute(sa.text("DELETE FROM sqlite_sequence WHERE name = :t"), {"t": table})
    bind.execute(
        sa.text("INSERT INTO sqlite_sequence (name, seq) VALUES (:t, :seq)"),
        {"t": table, "seq": highest},
    )


def _idea_columns() -> list[sa.Column]:
    return [sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True)]


def _comment_columns() -> list[sa.Column]:
    return [
        sa.Column("hidden_by", sa.BigInteger(), nullable=True),
        sa.Column("erased_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("carded_at", sa.DateTime(timezone=True), nullable=True),
    ]


def upgrade() -> None:
    bind = op.get_bind()
    if bind.dialect.name == "sqlite":
        # Dropping a parent table with foreign keys on would cascade-delete its children
        # (env.py turns them off for migrations): refuse rather than lose comments and supports.
        if bind.scalar(sa.text("PRAGMA foreign_keys")):
            raise RuntimeError("0004 must run with PRAGMA foreign_keys=OFF on SQLite")
        _sqlite_recreate("ideas", _idea_columns())
        _sqlite_recreate("comments", _comment_columns())
        _seed_sqlite_sequence("ideas")
        _seed_sqlite_sequence("comments")
        problems = bind.execute(sa.text("PRAGMA foreign_key_check")).fetchall()
        if problems:
            raise RuntimeError(f"foreign keys broken by the rebuild: {problems[:5]}")
    else:
        # PostgreSQL sequences never hand out an id twice: only the new columns.
        for column in _idea_columns():
            op.add_column("ideas", column)
        for column in _comment_columns():
            op.add_column("comments", column)
    # Comments already there had their card sent one by one.
    op.execute(sa.text("UPDATE comments SET carded_at = created_at"))

    op.create_table(
        "audit_log",
        sa.Column("id", sa.Integer(), nullable=False),
        sa.Column("at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("actor_id", sa.BigInteger(), nullable=True),
        sa.Column("actor_name", sa.String(length=128), nullable=True),
        sa.Column("action", sa.String(length=32), nullable=False),
        sa.Column("target", sa.String(length=16), nullable=True),
        sa.Column("target_id", sa.String(length=64), nullable=True),
        sa.Column("detail", sa.String(length=255), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_audit_log")),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("audit_log") as batch:
        batch.create_index(batch.f("ix_audit_log_at"), ["at"], unique=False)
        batch.create_index(batch.f("ix_audit_log_actor_id"), ["actor_id"], unique=False)


def downgrade() -> None:
    op.drop_table("audit_log")
    with op.batch_alter_table("comments") as batch:
        batch.drop_column("carded_at")
        batch.drop_column("erased_at")
        batch.drop_column("hidden_by")
    with op.batch_alter_table("ideas") as batch:
        batch.drop_column("erased_at")
