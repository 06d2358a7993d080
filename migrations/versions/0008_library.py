"""library: a transcript payment refunded because its Space failed no longer grants

Revision ID: 0008
Revises: 0007
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    # Set when the payment is credited back (its Space failed for good): the member may
    # ask for the Space again, and buying it again clears it (one row per user and Space).
    with op.batch_alter_table("transcription_payments") as batch:
        batch.add_column(sa.Column("refunded_at", sa.DateTime(), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("transcription_payments") as batch:
        batch.drop_column("refunded_at")
