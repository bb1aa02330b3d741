"""a member's commune (and whether they were asked); an invitation's commune

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-06 20:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0009'
down_revision: str | None = '0008'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Plain ADD COLUMN on both backends: nullable columns, no table rebuild on SQLite.
    op.add_column('members', sa.Column('commune', sa.String(length=32), nullable=True))
    op.add_column(
        'members', sa.Column('commune_answered_at', sa.DateTime(timezone=True), nullable=True)
    )
    op.add_column('invitations', sa.Column('commune', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('invitations') as batch:
        batch.drop_column('commune')
    with op.batch_alter_table('members') as batch:
        batch.drop_column('commune_answered_at')
        batch.drop_column('commune')
