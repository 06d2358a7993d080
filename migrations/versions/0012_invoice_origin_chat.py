"""invoices.origin_chat_id: the chat a purchase came from, a column instead of payload JSON

Revision ID: 0012
Revises: 0011

Existing invoices get it from their payload's ``chat_id`` (read in Python, written in
batches with bound parameters, the same on SQLite and PostgreSQL). The payload keeps its
``chat_id``; nothing reads it any more.
"""

import json
from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None

BATCH = 500

invoices = sa.table(
    "invoices",
    sa.column("id", sa.Integer()),
    sa.column("payload", sa.Text()),
    sa.column("origin_chat_id", sa.Text()),
)


def origin_chat(payload: str | None) -> str | None:
    """The payload's ``chat_id`` as text, as the code read it before this revision."""
    if not payload:
        return None
    try:
        data = json.loads(payload)
    except ValueError:
        return None
    chat = data.get("chat_id") if isinstance(data, dict) else None
    return str(chat) if chat else None


def upgrade() -> None:
    op.add_column("invoices", sa.Column("origin_chat_id", sa.Text(), nullable=True))
    conn = op.get_bind()
    read = (
        sa.select(invoices.c.id, invoices.c.payload)
        .where(invoices.c.id > sa.bindparam("after"), invoices.c.payload.is_not(None))
        .order_by(invoices.c.id)
        .limit(BATCH)
    )
    write = (
        sa.update(invoices)
        .where(invoices.c.id == sa.bindparam("pk"))
        .values(origin_chat_id=sa.bindparam("chat"))
    )
    after = 0
    while rows := conn.execute(read, {"after": after}).all():
        found = [{"pk": pk, "chat": origin_chat(payload)} for pk, payload in rows]
        found = [f for f in found if f["chat"] is not None]
        if found:
            conn.execute(write, found)
        after = rows[-1][0]


def downgrade() -> None:
    # not batch mode: rebuilding ``invoices`` on SQLite would drop the table under foreign
    # keys that null their references (ON DELETE SET NULL); SQLite ≥ 3.35 drops a column
    op.drop_column("invoices", "origin_chat_id")
