"""passages: chat passage index with full text (SQLite FTS5, PostgreSQL tsvector + GIN)

Revision ID: 0004
Revises: 0003
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# SQLite: an external-content FTS5 table over passages, kept in step by triggers; rowid ==
# passages.id, so a Space's passages (inserted in one transaction) form a rowid range that
# FTS5 can seek to instead of scanning the whole corpus' doclists.
_SQLITE = [
    "CREATE VIRTUAL TABLE passages_fts USING fts5(text, speakers, content='passages', "
    "content_rowid='id', tokenize='porter unicode61')",
    "CREATE TRIGGER passages_fts_ai AFTER INSERT ON passages BEGIN "
    "INSERT INTO passages_fts(rowid, text, speakers) VALUES (new.id, new.text, new.speakers); END",
    "CREATE TRIGGER passages_fts_ad AFTER DELETE ON passages BEGIN "
    "INSERT INTO passages_fts(passages_fts, rowid, text, speakers) "
    "VALUES ('delete', old.id, old.text, old.speakers); END",
    "CREATE TRIGGER passages_fts_au AFTER UPDATE ON passages BEGIN "
    "INSERT INTO passages_fts(passages_fts, rowid, text, speakers) "
    "VALUES ('delete', old.id, old.text, old.speakers); "
    "INSERT INTO passages_fts(rowid, text, speakers) VALUES (new.id, new.text, new.speakers); END",
]

# PostgreSQL: a stored tsvector per passage (with its Space, so retrieval filters by Space
# first through a btree and ranks only that Space's rows), GIN for corpus-wide matching.
_POSTGRES = [
    "CREATE TABLE passages_fts ("
    " passage_id INTEGER PRIMARY KEY REFERENCES passages(id) ON DELETE CASCADE,"
    " space_id INTEGER NOT NULL,"
    " tsv TSVECTOR NOT NULL)",
    "CREATE INDEX passages_fts_space ON passages_fts (space_id)",
    "CREATE INDEX passages_fts_tsv_gin ON passages_fts USING gin(tsv)",
    "CREATE FUNCTION passages_fts_sync() RETURNS trigger LANGUAGE plpgsql AS $$ BEGIN "
    "INSERT INTO passages_fts (passage_id, space_id, tsv) VALUES (NEW.id, NEW.space_id, "
    "setweight(to_tsvector('english', coalesce(NEW.speakers, '')), 'B') || "
    "to_tsvector('english', NEW.text)) "
    "ON CONFLICT (passage_id) DO UPDATE SET space_id = EXCLUDED.space_id, tsv = EXCLUDED.tsv; "
    "RETURN NEW; END $$",
    "CREATE TRIGGER passages_fts_sync AFTER INSERT OR UPDATE ON passages "
    "FOR EACH ROW EXECUTE FUNCTION passages_fts_sync()",
]


def upgrade() -> None:
    op.create_table(
        "passages",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("seq", sa.Integer(), nullable=False),
        sa.Column("start_seconds", sa.Float(), nullable=False),
        sa.Column("end_seconds", sa.Float(), nullable=False),
        sa.Column("speakers", sa.Text(), nullable=True),
        sa.Column("text", sa.Text(), nullable=False),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_passages_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_passages")),
        sa.UniqueConstraint("space_id", "seq", name=op.f("uq_passages_space_id_seq")),
        sqlite_autoincrement=True,
    )
    dialect = op.get_bind().dialect.name
    for sql in _SQLITE if dialect == "sqlite" else _POSTGRES:
        op.execute(sql)


def downgrade() -> None:
    dialect = op.get_bind().dialect.name
    if dialect == "sqlite":
        for trg in ("passages_fts_ai", "passages_fts_ad", "passages_fts_au"):
            op.execute(f"DROP TRIGGER IF EXISTS {trg}")
        op.execute("DROP TABLE IF EXISTS passages_fts")
    else:
        op.execute("DROP TRIGGER IF EXISTS passages_fts_sync ON passages")
        op.execute("DROP TABLE IF EXISTS passages_fts")
        op.execute("DROP FUNCTION IF EXISTS passages_fts_sync()")
    op.drop_table("passages")
