"""responses: an index for the export's pages (submitted responses in submission order)

The export reads submitted responses 500 at a time, in (submitted_at, id) order, each page
after the last. Without an index in that order every page visited and sorted all of them
(SQLite: a temporary B-tree for the ORDER BY): at 100,000 responses, 200 pages of 100,000
rows, 12 s of the 21 s of CPU that reading them took. With it each page is a range of the
index.

Revision ID: 0014
Revises: 0013
Create Date: 2026-12-07 02:00:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0014'
down_revision: str | None = '0013'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_index(
        'ix_responses_export',
        'responses',
        ['consultation_id', 'status', 'submitted_at', 'id'],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index('ix_responses_export', table_name='responses')
