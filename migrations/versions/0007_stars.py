"""star_payments: Telegram Stars receipts (currency XTR), one per telegram_payment_charge_id

Revision ID: 0007
Revises: 0006
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "star_payments",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("telegram_payment_charge_id", sa.Text(), nullable=False),
        sa.Column("provider_payment_charge_id", sa.Text(), nullable=True),
        sa.Column("invoice_id", sa.Integer(), nullable=True),
        sa.Column("telegram_user_id", sa.Text(), nullable=False),
        sa.Column("currency", sa.Text(), nullable=False),
        sa.Column("amount", sa.BigInteger(), nullable=False),
        sa.Column("status", sa.Text(), nullable=False),
        sa.Column("refund_reason", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=True,
        ),
        sa.Column("credited_at", sa.DateTime(), nullable=True),
        sa.Column("refunded_at", sa.DateTime(), nullable=True),
        sa.ForeignKeyConstraint(
            ["invoice_id"],
            ["invoices.id"],
            name=op.f("fk_star_payments_invoice_id_invoices"),
            ondelete="SET NULL",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_star_payments")),
        sa.UniqueConstraint(
            "telegram_payment_charge_id",
            name=op.f("uq_star_payments_telegram_payment_charge_id"),
        ),
        sqlite_autoincrement=True,
    )
    with op.batch_alter_table("star_payments", schema=None) as batch_op:
        batch_op.create_index(
            batch_op.f("ix_star_payments_invoice_id"), ["invoice_id"], unique=False
        )


def downgrade() -> None:
    with op.batch_alter_table("star_payments", schema=None) as batch_op:
        batch_op.drop_index(batch_op.f("ix_star_payments_invoice_id"))
    op.drop_table("star_payments")
