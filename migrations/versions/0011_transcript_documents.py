"""transcript_documents: a Space's transcript documents (md, json, srt, vtt) in the database

Revision ID: 0011
Revises: 0010

Spaces completed before this revision have their documents only in the ``data/`` of the
machine that made them: ``spacescribe run`` copies them in at start wherever it finds them
(``core.transcripts.backfill``), and until then they are read from that disk.
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "transcript_documents",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("space_id", sa.Integer(), nullable=False),
        sa.Column("format", sa.Text(), nullable=False),
        sa.Column("content", sa.Text(), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(), server_default=sa.func.current_timestamp(), nullable=True
        ),
        sa.Column(
            "updated_at", sa.DateTime(), server_default=sa.func.current_timestamp(), nullable=True
        ),
        sa.ForeignKeyConstraint(
            ["space_id"],
            ["spaces.id"],
            name=op.f("fk_transcript_documents_space_id_spaces"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_transcript_documents")),
        sa.UniqueConstraint(
            "space_id", "format", name=op.f("uq_transcript_documents_space_id_format")
        ),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("transcript_documents")
