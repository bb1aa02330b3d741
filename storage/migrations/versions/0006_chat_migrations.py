"""chat migrations: groups upgraded to supergroups, followed

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-04 08:50:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0006'
down_revision: str | None = '0005'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('chat_migrations',
    sa.Column('old_chat_id', sa.BigInteger(), autoincrement=False, nullable=False),
    sa.Column('new_chat_id', sa.BigInteger(), nullable=False),
    sa.Column('migrated_at', sa.DateTime(timezone=True), nullable=False),
    sa.PrimaryKeyConstraint('old_chat_id', name=op.f('pk_chat_migrations'))
    )


def downgrade() -> None:
    op.drop_table('chat_migrations')
