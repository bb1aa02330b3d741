"""PostgreSQL: a survey answer stored in one round trip (consultbot_store_answer)

A tap's answer took six round trips on PostgreSQL (BEGIN, four statements, COMMIT); the
load benchmark's profile showed them as most of what was left of a tap's CPU. One
data-modifying statement cannot replace them: its statements share one snapshot, so a
second device of the member, waiting on the response row, would not see the first device's
choices and would keep both on a single-choice question. A VOLATILE function takes a fresh
snapshot per statement after the response row is locked, as the transaction did. SQLite
keeps the statements of storage/repositories/survey.py.

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00.000000
"""
from collections.abc import Sequence

from alembic import op

revision: str = '0007'
down_revision: str | None = '0006'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

SIGNATURE = (
    "consultbot_store_answer(varchar, bigint, timestamptz, varchar, text, text[], text[])"
)


def upgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    # text[], not varchar[]: asyncpg knows text[] and would look varchar[] up in the catalog
    # (13 ms) on each new connection. Choices still chosen are kept and new ones added
    # (disjoint from those deleted): the same rows as deleting them all and inserting anew.
    op.execute(
        """
CREATE FUNCTION consultbot_store_answer(
    p_consultation varchar, p_member bigint, p_now timestamptz, p_question varchar,
    p_text text, p_choices text[], p_dropped text[]
) RETURNS integer LANGUAGE plpgsql VOLATILE AS $$
DECLARE
    r integer;
BEGIN
    INSERT INTO responses (consultation_id, member_id, status, updated_at)
    VALUES (p_consultation, p_member, 'draft', p_now)
    ON CONFLICT (consultation_id, member_id) DO UPDATE SET updated_at = excluded.updated_at
    RETURNING id INTO r;
    DELETE FROM answer_choices
    WHERE response_id = r AND (
        question_id = ANY (p_dropped)
        OR (question_id = p_question AND option_id <> ALL (p_choices)));
    DELETE FROM question_answers WHERE response_id = r AND question_id = ANY (p_dropped);
    INSERT INTO question_answers (response_id, question_id, text)
    VALUES (r, p_question, p_text)
    ON CONFLICT (response_id, question_id) DO UPDATE SET text = excluded.text;
    INSERT INTO answer_choices (response_id, question_id, option_id)
    SELECT r, p_question, option FROM unnest(p_choices) AS option
    ON CONFLICT DO NOTHING;
    RETURN r;
END
$$
"""
    )


def downgrade() -> None:
    if op.get_bind().dialect.name != "postgresql":
        return
    op.execute(f"DROP FUNCTION {SIGNATURE}")
