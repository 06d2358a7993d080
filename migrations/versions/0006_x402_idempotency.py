"""x402 idempotency records (payment-identifier) and single-use Sign-In-With-X nonces

Revision ID: 0006
Revises: 0005
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table(
        "x402_requests",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("payment_id", sa.Text(), nullable=True),
        sa.Column("authorization_key", sa.Text(), nullable=False),
        sa.Column("request_hash", sa.Text(), nullable=False),
        sa.Column("body_hash", sa.Text(), nullable=False),
        sa.Column("route", sa.Text(), nullable=False),
        sa.Column("payer_address", sa.Text(), nullable=False),
        sa.Column("state", sa.Text(), nullable=False),
        sa.Column("lease_until", sa.DateTime(), nullable=False),
        sa.Column("response_status", sa.Integer(), nullable=True),
        sa.Column("response_body", sa.Text(), nullable=True),
        sa.Column("response_headers", sa.Text(), nullable=True),
        sa.Column(
            "created_at",
            sa.DateTime(),
            server_default=sa.text("(CURRENT_TIMESTAMP)"),
            nullable=True,
        ),
        sa.Column("updated_at", sa.DateTime(), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_x402_requests")),
        sa.UniqueConstraint("authorization_key", name=op.f("uq_x402_requests_authorization_key")),
        sa.UniqueConstraint("payment_id", name=op.f("uq_x402_requests_payment_id")),
        sqlite_autoincrement=True,
    )
    op.create_index(
        op.f("ix_x402_requests_payer_address"), "x402_requests", ["payer_address"], unique=False
    )
    op.create_table(
        "siwx_nonces",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("nonce", sa.Text(), nullable=False),
        sa.Column("wallet_address", sa.Text(), nullable=False),
        sa.Column(
            "used_at", sa.DateTime(), server_default=sa.text("(CURRENT_TIMESTAMP)"), nullable=True
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_siwx_nonces")),
        sa.UniqueConstraint("nonce", name=op.f("uq_siwx_nonces_nonce")),
        sqlite_autoincrement=True,
    )


def downgrade() -> None:
    op.drop_table("siwx_nonces")
    op.drop_index(op.f("ix_x402_requests_payer_address"), table_name="x402_requests")
    op.drop_table("x402_requests")
