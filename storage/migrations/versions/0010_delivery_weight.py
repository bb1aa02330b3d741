"""deliveries weigh what Telegram counts: each photo of an album

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 09:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0010'
down_revision: str | None = '0009'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.add_column(sa.Column('weight', sa.Integer(), server_default='1', nullable=False))
    # Albums queued before: their media row is named "album-N.album" (N photos).
    op.execute(
        "UPDATE deliveries SET weight = ("
        " SELECT CAST(SUBSTR(m.filename, 7, LENGTH(m.filename) - 12) AS INTEGER)"
        " FROM outbox_media m WHERE m.id = deliveries.media_id)"
        " WHERE media_id IN (SELECT id FROM outbox_media WHERE filename LIKE 'album-%.album')"
    )


def downgrade() -> None:
    with op.batch_alter_table('deliveries', schema=None) as batch_op:
        batch_op.drop_column('weight')
