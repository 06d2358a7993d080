"""queue indexes: the claim's order over queued jobs only; a Space's payers

Revision ID: 0005
Revises: 0004
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

# A claim reads the first queued jobs in (priority DESC, queued_at, id) order. Through
# idx_priority_queued it also walks every finished job ahead of them, so each claim got
# slower as the table grew; this partial index holds queued jobs only.
QUEUED = sa.text("status = 'queued'")


def upgrade() -> None:
    op.create_index(
        "idx_processing_queue_claim",
        "processing_queue",
        [sa.text("priority DESC"), sa.text("queued_at ASC"), sa.text("id ASC")],
        sqlite_where=QUEUED,
        postgresql_where=QUEUED,
    )
    # completing (or failing) a job looks up the Space's payers: the seed's indexes on
    # transcription_payments lead with user_id, so that was a scan of every purchase
    op.create_index("idx_transcription_payments_space", "transcription_payments", ["space_id"])


def downgrade() -> None:
    op.drop_index("idx_transcription_payments_space", table_name="transcription_payments")
    op.drop_index("idx_processing_queue_claim", table_name="processing_queue")
