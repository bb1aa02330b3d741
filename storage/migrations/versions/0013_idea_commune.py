"""an idea's commune: its author's, as it was when the idea was submitted

Revision ID: 0013
Revises: 0012
Create Date: 2026-12-06 21:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0013'
down_revision: str | None = '0012'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # A nullable column: a plain ADD COLUMN on both backends. Ideas submitted before keep
    # NULL (the network's, with no commune): their authors' communes were not asked then.
    op.add_column('ideas', sa.Column('commune', sa.String(length=32), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table('ideas') as batch:
        batch.drop_column('commune')
