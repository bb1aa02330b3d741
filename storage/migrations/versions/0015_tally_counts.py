"""tally_counts: the submitted responses counted as they change, by the database's triggers

Results counted every answer at each refresh: at 100,000 responses, 1.2 s of a PostgreSQL
core (two hash joins over a million choices) every 15 s while members tapped, and the same
again for the organisers' export (bench/results_load.py). The triggers below keep the counts
with each write instead, in the writing transaction; a refresh then reads a few hundred rows.

What changes a count: an answer or a choice of a submitted response added, changed or
removed (an edit while the survey is open), a response submitted (or no longer, or added
submitted: an import), a response erased, a member's commune changed, a member erased (/forget). Whoever writes, through the
bot, a bulk import or psql, the counts follow. The triggers count a response's contribution
to its author's commune ('' when none); a response never changes its consultation or member.

Deletions, in both databases: a response's BEFORE DELETE trigger takes its contribution out
while its answers still exist; their own triggers then find it gone and count nothing. When a
member is erased, their BEFORE DELETE trigger takes out their responses', and the cascaded
deletions find the member gone and count nothing.

PostgreSQL: every change to a commune's counts first takes a transaction-level advisory lock
for (consultation, commune), two in the order of their keys: concurrent submissions update
the same rows in different orders (a submission adds all of its counts at once, an edit one
at a time) and would otherwise deadlock. SQLite writes one transaction at a time.

SQLite drops a table's triggers with the table: a later migration that rebuilds one of these
tables (batch mode) must create them again (`sqlite_triggers` below).

Revision ID: 0015
Revises: 0014
Create Date: 2026-12-07 16:00:00.000000
"""
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = '0015'
down_revision: str | None = '0014'
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

TALLY_LOCK = 0x7461  # the advisory locks' first key: "ta"

UPSERT = (
    "INSERT INTO tally_counts (consultation_id, commune, question_id, option_id, n) {select} "
    "ON CONFLICT (consultation_id, commune, question_id, option_id) "
    "DO UPDATE SET n = tally_counts.n + excluded.n"
)


def parts(where: str) -> str:
    """The counts of the responses `r` matching `where`: (c, m, q, o) per counted row."""
    return f"""
        SELECT r.consultation_id AS c, r.member_id AS m, '' AS q, '' AS o
        FROM responses r WHERE {where}
        UNION ALL
        SELECT r.consultation_id, r.member_id, a.question_id, ''
        FROM responses r JOIN question_answers a ON a.response_id = r.id WHERE {where}
        UNION ALL
        SELECT r.consultation_id, r.member_id, a.question_id, '*'
        FROM responses r JOIN question_answers a ON a.response_id = r.id
        WHERE {where} AND a.text <> ''
        UNION ALL
        SELECT r.consultation_id, r.member_id, x.question_id, x.option_id
        FROM responses r JOIN answer_choices x ON x.response_id = r.id WHERE {where}"""


def add_responses(where: str, sign: str, commune: str | None = None) -> str:
    """Add (sign '+') or take out ('-') the counts of the responses matching `where`, to their
    author's commune, or to `commune` (an expression) when given."""
    if commune is None:
        return UPSERT.format(
            select=f"""SELECT p.c, coalesce(mm.commune, ''), p.q, p.o, {sign}count(*)
            FROM ({parts(where)}) AS p JOIN members mm ON mm.id = p.m
            WHERE true GROUP BY p.c, mm.commune, p.q, p.o"""
        )
    return UPSERT.format(
        select=f"""SELECT p.c, {commune}, p.q, p.o, {sign}count(*)
        FROM ({parts(where)}) AS p WHERE true GROUP BY p.c, p.q, p.o"""
    )


def add_row(row: str, question: str, option: str, sign: str, also: str = "true") -> str:
    """Add or take out one count of `row` (an answer or a choice: NEW or OLD) when its
    response is submitted and `also` holds."""
    return UPSERT.format(
        select=f"""SELECT r.consultation_id, coalesce(mm.commune, ''), {question}, {option},
            {sign}1
        FROM responses r JOIN members mm ON mm.id = r.member_id
        WHERE r.id = {row}.response_id AND r.status = 'submitted' AND {also}"""
    )


def _text(row: str) -> str:
    return f"coalesce({row}.text, '') <> ''"


def _answer(row: str, sign: str) -> list[str]:
    return [
        add_row(row, f"{row}.question_id", "''", sign),
        add_row(row, f"{row}.question_id", "'*'", sign, _text(row)),
    ]


def _choice(row: str, sign: str) -> list[str]:
    return [add_row(row, f"{row}.question_id", f"{row}.option_id", sign)]


ANSWER_CHANGED = (
    f"({_text('OLD')}) <> ({_text('NEW')}) OR OLD.question_id <> NEW.question_id"
    " OR OLD.response_id <> NEW.response_id"
)
CHOICE_CHANGED = (
    "OLD.question_id <> NEW.question_id OR OLD.option_id <> NEW.option_id"
    " OR OLD.response_id <> NEW.response_id"
)
IS_SUBMITTED = "r.id = {row}.id AND {row}.status = 'submitted'"
AUTHOR_KNOWN = " AND EXISTS (SELECT 1 FROM members WHERE id = {row}.member_id)"


def _sqlite_trigger(name: str, when: str, table: str, statements: list[str], cond: str = "") -> str:
    condition = f" WHEN {cond}" if cond else ""
    body = ";\n".join(statements)
    return f"CREATE TRIGGER {name} {when} ON {table}{condition} BEGIN\n{body};\nEND"


def sqlite_triggers() -> list[str]:
    moved = "r.member_id = OLD.id AND r.status = 'submitted'"
    return [
        _sqlite_trigger("tally_answer_added", "AFTER INSERT", "question_answers",
                        _answer("NEW", "+")),
        _sqlite_trigger("tally_answer_removed", "AFTER DELETE", "question_answers",
                        _answer("OLD", "-")),
        _sqlite_trigger("tally_answer_changed", "AFTER UPDATE", "question_answers",
                        _answer("OLD", "-") + _answer("NEW", "+"), ANSWER_CHANGED),
        _sqlite_trigger("tally_choice_added", "AFTER INSERT", "answer_choices",
                        _choice("NEW", "+")),
        _sqlite_trigger("tally_choice_removed", "AFTER DELETE", "answer_choices",
                        _choice("OLD", "-")),
        _sqlite_trigger("tally_choice_changed", "AFTER UPDATE", "answer_choices",
                        _choice("OLD", "-") + _choice("NEW", "+"), CHOICE_CHANGED),
        _sqlite_trigger(
            "tally_response_added", "AFTER INSERT", "responses",
            [add_responses(IS_SUBMITTED.format(row="NEW"), "+")],
            "NEW.status = 'submitted'",
        ),
        _sqlite_trigger(
            "tally_response_status", "AFTER UPDATE OF status", "responses",
            [add_responses(IS_SUBMITTED.format(row="OLD"), "-"),
             add_responses(IS_SUBMITTED.format(row="NEW"), "+")],
            "OLD.status IS NOT NEW.status",
        ),
        _sqlite_trigger(
            "tally_response_erased", "BEFORE DELETE", "responses",
            [add_responses(IS_SUBMITTED.format(row="OLD") + AUTHOR_KNOWN.format(row="OLD"), "-")],
        ),
        _sqlite_trigger(
            "tally_member_moved", "AFTER UPDATE OF commune", "members",
            [add_responses(moved, "-", "coalesce(OLD.commune, '')"),
             add_responses(moved, "+", "coalesce(NEW.commune, '')")],
            "OLD.commune IS NOT NEW.commune",
        ),
        _sqlite_trigger(
            "tally_member_erased", "BEFORE DELETE", "members",
            [add_responses(moved, "-", "coalesce(OLD.commune, '')")],
        ),
    ]


# PostgreSQL: the same statements in trigger functions, each after the advisory locks of the
# communes it changes. A row's lock: its response's commune, read as the statement reads it.
_PG_LOCK = f"PERFORM pg_advisory_xact_lock({TALLY_LOCK}, hashtext({{key}}))"
_PG_ROW_KEY = """SELECT r.consultation_id || '/' || coalesce(mm.commune, '') INTO v_key
        FROM responses r JOIN members mm ON mm.id = r.member_id
        WHERE r.id = {row}.response_id AND r.status = 'submitted'"""


def _pg_row_body(row: str, statements: list[str]) -> str:
    body = ";\n        ".join(statements)
    return f"""
        {_PG_ROW_KEY.format(row=row)};
        IF FOUND THEN
            {_PG_LOCK.format(key='v_key')};
            {body};
        END IF;"""


def _pg_function(name: str, body: str, declare: str = "v_key text;") -> str:
    returned = "OLD" if name.endswith("_erased") else "NULL"
    return f"""CREATE FUNCTION {name}() RETURNS trigger LANGUAGE plpgsql AS $$
DECLARE
    {declare}
BEGIN
    {body}
    RETURN {returned};
END
$$"""


def _pg_response_body(row: str, sign: str, also: str = "") -> str:
    return f"""
        SELECT {row}.consultation_id || '/' || coalesce(commune, '') INTO v_key
        FROM members WHERE id = {row}.member_id;
        IF FOUND AND {row}.status = 'submitted' THEN
            {_PG_LOCK.format(key='v_key')};
            {add_responses(IS_SUBMITTED.format(row=row) + also, sign)};
        END IF;"""


def _pg_member_body(erased: bool) -> str:
    mine = "r.member_id = OLD.id AND r.status = 'submitted' AND r.consultation_id = v_c"
    old, new = "coalesce(OLD.commune, '')", "coalesce(NEW.commune, '')"
    keys = [f"v_c || '/' || {old}"] + ([] if erased else [f"v_c || '/' || {new}"])
    moves = [add_responses(mine, "-", old)] + ([] if erased else [add_responses(mine, "+", new)])
    body = ";\n            ".join(moves)
    return f"""
        FOR v_c IN SELECT DISTINCT consultation_id FROM responses
                   WHERE member_id = OLD.id AND status = 'submitted' ORDER BY 1 LOOP
            FOR v_k IN SELECT k FROM unnest(ARRAY[{', '.join(keys)}]) AS k
                       ORDER BY hashtext(k) LOOP
                {_PG_LOCK.format(key='v_k')};
            END LOOP;
            {body};
        END LOOP;"""


def pg_statements() -> list[str]:
    functions = {
        "consultbot_tally_answer_added": _pg_row_body("NEW", _answer("NEW", "+")),
        "consultbot_tally_answer_removed": _pg_row_body("OLD", _answer("OLD", "-")),
        "consultbot_tally_answer_changed": _pg_row_body("OLD", _answer("OLD", "-"))
        + _pg_row_body("NEW", _answer("NEW", "+")),
        "consultbot_tally_choice_added": _pg_row_body("NEW", _choice("NEW", "+")),
        "consultbot_tally_choice_removed": _pg_row_body("OLD", _choice("OLD", "-")),
        "consultbot_tally_choice_changed": _pg_row_body("OLD", _choice("OLD", "-"))
        + _pg_row_body("NEW", _choice("NEW", "+")),
        "consultbot_tally_response_added": _pg_response_body("NEW", "+"),
        "consultbot_tally_response_status": _pg_response_body("OLD", "-")
        + _pg_response_body("NEW", "+"),
        "consultbot_tally_response_erased": _pg_response_body("OLD", "-"),
    }
    out = [_pg_function(name, body) for name, body in functions.items()]
    member = "v_c text; v_k text;"
    out.append(_pg_function("consultbot_tally_member_moved", _pg_member_body(False), member))
    out.append(_pg_function("consultbot_tally_member_erased", _pg_member_body(True), member))
    triggers = [
        ("tally_answer_added", "AFTER INSERT", "question_answers", ""),
        ("tally_answer_removed", "AFTER DELETE", "question_answers", ""),
        ("tally_answer_changed", "AFTER UPDATE", "question_answers", ANSWER_CHANGED),
        ("tally_choice_added", "AFTER INSERT", "answer_choices", ""),
        ("tally_choice_removed", "AFTER DELETE", "answer_choices", ""),
        ("tally_choice_changed", "AFTER UPDATE", "answer_choices", CHOICE_CHANGED),
        ("tally_response_added", "AFTER INSERT", "responses", "NEW.status = 'submitted'"),
        ("tally_response_status", "AFTER UPDATE OF status", "responses",
         "OLD.status IS DISTINCT FROM NEW.status"),
        ("tally_response_erased", "BEFORE DELETE", "responses", ""),
        ("tally_member_moved", "AFTER UPDATE OF commune", "members",
         "OLD.commune IS DISTINCT FROM NEW.commune"),
        ("tally_member_erased", "BEFORE DELETE", "members", ""),
    ]
    for name, when, table, cond in triggers:
        condition = f" WHEN ({cond})" if cond else ""
        out.append(
            f"CREATE TRIGGER {name} {when} ON {table} FOR EACH ROW{condition} "
            f"EXECUTE FUNCTION consultbot_{name}()"
        )
    return out


def rebuild() -> str:
    """Every consultation's counts from the submitted responses (after a DELETE of them)."""
    return add_responses("r.status = 'submitted'", "+")


def upgrade() -> None:
    op.create_table(
        'tally_counts',
        sa.Column('consultation_id', sa.String(length=64), nullable=False),
        sa.Column('commune', sa.String(length=32), nullable=False),
        sa.Column('question_id', sa.String(length=32), nullable=False),
        sa.Column('option_id', sa.String(length=32), nullable=False),
        sa.Column('n', sa.Integer(), nullable=False),
        sa.PrimaryKeyConstraint(
            'consultation_id', 'commune', 'question_id', 'option_id', name=op.f('pk_tally_counts')
        ),
    )
    statements = sqlite_triggers() if op.get_bind().dialect.name == "sqlite" else pg_statements()
    for statement in statements:
        op.execute(statement)
    op.execute(rebuild())


def downgrade() -> None:
    names = [
        "tally_answer_added", "tally_answer_removed", "tally_answer_changed",
        "tally_choice_added", "tally_choice_removed", "tally_choice_changed",
        "tally_response_added", "tally_response_status", "tally_response_erased",
        "tally_member_moved", "tally_member_erased",
    ]
    tables = {"answer": "question_answers", "choice": "answer_choices",
              "response": "responses", "member": "members"}
    postgres = op.get_bind().dialect.name == "postgresql"
    for name in names:
        table = tables[name.split("_")[1]]
        op.execute(f"DROP TRIGGER {name} ON {table}" if postgres else f"DROP TRIGGER {name}")
        if postgres:
            op.execute(f"DROP FUNCTION consultbot_{name}()")
    op.drop_table('tally_counts')
