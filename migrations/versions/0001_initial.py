"""initial schema: the seed's six tables and extensions

Revision ID: 0001
Revises:
Create Date: 2026-11-25 02:14:30.614332
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op


revision: str = '0001'
down_revision: str | None = None
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    op.create_table('spaces',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('space_id', sa.Text(), nullable=False),
    sa.Column('space_url', sa.Text(), nullable=False),
    sa.Column('title', sa.Text(), nullable=False),
    sa.Column('creator', sa.Text(), nullable=True),
    sa.Column('audio_file_path', sa.Text(), nullable=True),
    sa.Column('transcript_file_path', sa.Text(), nullable=True),
    sa.Column('status', sa.Text(), server_default=sa.text("'pending'"), nullable=False),
    sa.Column('audio_duration_seconds', sa.Integer(), nullable=True),
    sa.Column('audio_size_mb', sa.Float(), nullable=True),
    sa.Column('transcript_length', sa.Integer(), nullable=True),
    sa.Column('participants', sa.Text(), nullable=True),
    sa.Column('speaker_profiles', sa.Text(), nullable=True),
    sa.Column('first_requested_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('processing_started_at', sa.DateTime(), nullable=True),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.Column('transcription_count', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('chat_unlock_count', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('space_started_at', sa.DateTime(), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_spaces')),
    sa.UniqueConstraint('space_id', name=op.f('uq_spaces_space_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.create_index('idx_completed_at', ['completed_at'], unique=False)
        batch_op.create_index('idx_space_id', ['space_id'], unique=False)
        batch_op.create_index('idx_spaces_status', ['status'], unique=False)

    op.create_table('users',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('wallet_address', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('last_seen_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_users')),
    sa.UniqueConstraint('wallet_address', name=op.f('uq_users_wallet_address')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.create_index('idx_wallet', ['wallet_address'], unique=False)

    op.create_table('accounts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('platform_user_id', sa.Text(), nullable=False),
    sa.Column('display_name', sa.Text(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('linked_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_accounts_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_accounts')),
    sa.UniqueConstraint('platform', 'platform_user_id', name=op.f('uq_accounts_platform_platform_user_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_accounts_user_id'), ['user_id'], unique=False)

    op.create_table('credits',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('amount_units', sa.BigInteger(), nullable=False),
    sa.Column('reason', sa.Text(), nullable=False),
    sa.Column('reference', sa.Text(), nullable=False),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_credits_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_credits')),
    sa.UniqueConstraint('reason', 'reference', name=op.f('uq_credits_reason_reference')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('credits', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_credits_user_id'), ['user_id'], unique=False)

    op.create_table('outbox',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('dedupe_key', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('platform', sa.Text(), nullable=False),
    sa.Column('recipient', sa.Text(), nullable=False),
    sa.Column('origin_chat_id', sa.Text(), nullable=True),
    sa.Column('space_id', sa.Integer(), nullable=True),
    sa.Column('payload', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default=sa.text("'pending'"), nullable=False),
    sa.Column('attempts', sa.Integer(), server_default=sa.text('0'), nullable=False),
    sa.Column('available_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('locked_by', sa.Text(), nullable=True),
    sa.Column('last_error', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('sent_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_outbox_space_id_spaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_outbox')),
    sa.UniqueConstraint('dedupe_key', name=op.f('uq_outbox_dedupe_key')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.create_index('idx_outbox_status_available', ['status', 'available_at'], unique=False)

    op.create_table('processing_queue',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('status', sa.Text(), server_default=sa.text("'queued'"), nullable=False),
    sa.Column('priority', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('retry_count', sa.Integer(), server_default=sa.text('0'), nullable=True),
    sa.Column('max_retries', sa.Integer(), server_default=sa.text('3'), nullable=True),
    sa.Column('error_message', sa.Text(), nullable=True),
    sa.Column('last_error_at', sa.DateTime(), nullable=True),
    sa.Column('queued_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('started_at', sa.DateTime(), nullable=True),
    sa.Column('completed_at', sa.DateTime(), nullable=True),
    sa.Column('available_at', sa.DateTime(), nullable=True),
    sa.Column('locked_by', sa.Text(), nullable=True),
    sa.Column('heartbeat_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_processing_queue_space_id_spaces'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_processing_queue')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('processing_queue', schema=None) as batch_op:
        batch_op.create_index('idx_processing_queue_status', ['status'], unique=False)
        batch_op.create_index('uq_processing_queue_live_space', ['space_id'], unique=True, sqlite_where=sa.text("status IN ('queued', 'processing')"), postgresql_where=sa.text("status IN ('queued', 'processing')"))

    op.create_table('invoices',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('public_id', sa.Text(), nullable=False),
    sa.Column('kind', sa.Text(), nullable=False),
    sa.Column('account_id', sa.Integer(), nullable=True),
    sa.Column('user_id', sa.Integer(), nullable=True),
    sa.Column('space_ids', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('amount_units', sa.BigInteger(), nullable=False),
    sa.Column('credit_units', sa.BigInteger(), server_default=sa.text('0'), nullable=False),
    sa.Column('network', sa.Text(), nullable=False),
    sa.Column('token_address', sa.Text(), nullable=False),
    sa.Column('pay_to', sa.Text(), nullable=False),
    sa.Column('status', sa.Text(), server_default=sa.text("'open'"), nullable=False),
    sa.Column('payer_address', sa.Text(), nullable=True),
    sa.Column('transaction_hash', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('expires_at', sa.DateTime(), nullable=False),
    sa.Column('paid_at', sa.DateTime(), nullable=True),
    sa.Column('credited_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['account_id'], ['accounts.id'], name=op.f('fk_invoices_account_id_accounts'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_invoices_user_id_users'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_invoices')),
    sa.UniqueConstraint('public_id', name=op.f('uq_invoices_public_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.create_index('idx_invoices_status_expires', ['status', 'expires_at'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_account_id'), ['account_id'], unique=False)
        batch_op.create_index(batch_op.f('ix_invoices_user_id'), ['user_id'], unique=False)

    op.create_table('chat_sessions',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('session_id', sa.Text(), nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('space_ids', sa.Text(), nullable=False),
    sa.Column('question', sa.Text(), nullable=False),
    sa.Column('answer', sa.Text(), nullable=False),
    sa.Column('sources', sa.Text(), nullable=True),
    sa.Column('num_spaces', sa.Integer(), nullable=False),
    sa.Column('amount_usdc', sa.Text(), nullable=False),
    sa.Column('transaction_hash', sa.Text(), nullable=True),
    sa.Column('model', sa.Text(), server_default=sa.text("'gpt-4o'"), nullable=True),
    sa.Column('tokens_used', sa.Integer(), nullable=True),
    sa.Column('queried_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_chat_sessions_invoice_id_invoices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_chat_sessions_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_sessions')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_chat_sessions_invoice_id')),
    sa.UniqueConstraint('session_id', name=op.f('uq_chat_sessions_session_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.create_index('idx_queried_at', ['queried_at'], unique=False)
        batch_op.create_index('idx_session_id', ['session_id'], unique=False)
        batch_op.create_index('idx_user_id', ['user_id'], unique=False)

    op.create_table('chat_unlocks',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('amount_usdc', sa.Text(), nullable=False),
    sa.Column('transaction_hash', sa.Text(), nullable=True),
    sa.Column('payment_verified', sa.Boolean(), server_default=sa.false(), nullable=True),
    sa.Column('unlocked_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('verified_at', sa.DateTime(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_chat_unlocks_invoice_id_invoices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_chat_unlocks_space_id_spaces'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_chat_unlocks_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_chat_unlocks')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_chat_unlocks_invoice_id')),
    sa.UniqueConstraint('user_id', 'space_id', name=op.f('uq_chat_unlocks_user_id_space_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('chat_unlocks', schema=None) as batch_op:
        batch_op.create_index('idx_chat_unlocks_user_space', ['user_id', 'space_id'], unique=False)
        batch_op.create_index('idx_unlocked_at', ['unlocked_at'], unique=False)

    op.create_table('payment_receipts',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.Column('method', sa.Text(), nullable=False),
    sa.Column('network', sa.Text(), nullable=False),
    sa.Column('token_address', sa.Text(), nullable=False),
    sa.Column('payer_address', sa.Text(), nullable=False),
    sa.Column('pay_to', sa.Text(), nullable=False),
    sa.Column('amount_units', sa.BigInteger(), nullable=False),
    sa.Column('transaction_hash', sa.Text(), nullable=True),
    sa.Column('log_index', sa.Integer(), nullable=True),
    sa.Column('authorization_nonce', sa.Text(), nullable=True),
    sa.Column('block_number', sa.BigInteger(), nullable=True),
    sa.Column('status', sa.Text(), nullable=False),
    sa.Column('payload', sa.Text(), nullable=True),
    sa.Column('created_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('credited_at', sa.DateTime(), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_payment_receipts_invoice_id_invoices'), ondelete='SET NULL'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_payment_receipts')),
    sa.UniqueConstraint('network', 'token_address', 'payer_address', 'authorization_nonce', name=op.f('uq_payment_receipts_network_token_address_payer_address_authorization_nonce')),
    sa.UniqueConstraint('network', 'transaction_hash', 'log_index', name=op.f('uq_payment_receipts_network_transaction_hash_log_index')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('payment_receipts', schema=None) as batch_op:
        batch_op.create_index(batch_op.f('ix_payment_receipts_invoice_id'), ['invoice_id'], unique=False)

    op.create_table('transcription_payments',
    sa.Column('id', sa.Integer(), autoincrement=True, nullable=False),
    sa.Column('user_id', sa.Integer(), nullable=False),
    sa.Column('space_id', sa.Integer(), nullable=False),
    sa.Column('amount_usdc', sa.Text(), nullable=False),
    sa.Column('transaction_hash', sa.Text(), nullable=True),
    sa.Column('payment_verified', sa.Boolean(), server_default=sa.false(), nullable=True),
    sa.Column('paid_at', sa.DateTime(), server_default=sa.text('(CURRENT_TIMESTAMP)'), nullable=True),
    sa.Column('verified_at', sa.DateTime(), nullable=True),
    sa.Column('invoice_id', sa.Integer(), nullable=True),
    sa.ForeignKeyConstraint(['invoice_id'], ['invoices.id'], name=op.f('fk_transcription_payments_invoice_id_invoices'), ondelete='SET NULL'),
    sa.ForeignKeyConstraint(['space_id'], ['spaces.id'], name=op.f('fk_transcription_payments_space_id_spaces'), ondelete='CASCADE'),
    sa.ForeignKeyConstraint(['user_id'], ['users.id'], name=op.f('fk_transcription_payments_user_id_users'), ondelete='CASCADE'),
    sa.PrimaryKeyConstraint('id', name=op.f('pk_transcription_payments')),
    sa.UniqueConstraint('invoice_id', name=op.f('uq_transcription_payments_invoice_id')),
    sa.UniqueConstraint('user_id', 'space_id', name=op.f('uq_transcription_payments_user_id_space_id')),
    sqlite_autoincrement=True
    )
    with op.batch_alter_table('transcription_payments', schema=None) as batch_op:
        batch_op.create_index('idx_paid_at', ['paid_at'], unique=False)
        batch_op.create_index('idx_transcription_payments_user_space', ['user_id', 'space_id'], unique=False)

    # The seed's job-selection index (expression-based, so autogenerate cannot see it).
    op.create_index(
        "idx_priority_queued",
        "processing_queue",
        [sa.text("priority DESC"), sa.text("queued_at ASC")],
    )
    _full_text_up()


def _full_text_up() -> None:
    """The seed's search optimisation: FTS5 on SQLite, GIN on PostgreSQL."""
    if op.get_bind().dialect.name == "sqlite":
        op.execute("CREATE VIRTUAL TABLE spaces_fts USING fts5(space_id, title, participants)")
        op.execute(
            "CREATE TRIGGER spaces_fts_ai AFTER INSERT ON spaces BEGIN "
            "INSERT INTO spaces_fts(rowid, space_id, title, participants) "
            "VALUES (new.id, new.space_id, new.title, new.participants); END"
        )
        op.execute(
            "CREATE TRIGGER spaces_fts_au AFTER UPDATE OF space_id, title, participants "
            "ON spaces BEGIN "
            "UPDATE spaces_fts SET space_id = new.space_id, title = new.title, "
            "participants = new.participants WHERE rowid = old.id; END"
        )
        op.execute(
            "CREATE TRIGGER spaces_fts_ad AFTER DELETE ON spaces BEGIN "
            "DELETE FROM spaces_fts WHERE rowid = old.id; END"
        )
    else:
        op.execute(
            "CREATE INDEX idx_spaces_title_gin ON spaces USING gin(to_tsvector('english', title))"
        )
        op.execute(
            "CREATE INDEX idx_spaces_participants_gin ON spaces "
            "USING gin(to_tsvector('english', coalesce(participants, '')))"
        )


def _full_text_down() -> None:
    if op.get_bind().dialect.name == "sqlite":
        for trg in ("spaces_fts_ai", "spaces_fts_au", "spaces_fts_ad"):
            op.execute(f"DROP TRIGGER IF EXISTS {trg}")
        op.execute("DROP TABLE IF EXISTS spaces_fts")
    else:
        op.execute("DROP INDEX IF EXISTS idx_spaces_participants_gin")
        op.execute("DROP INDEX IF EXISTS idx_spaces_title_gin")


def downgrade() -> None:
    _full_text_down()
    op.drop_index("idx_priority_queued", table_name="processing_queue")
    with op.batch_alter_table('transcription_payments', schema=None) as batch_op:
        batch_op.drop_index('idx_transcription_payments_user_space')
        batch_op.drop_index('idx_paid_at')

    op.drop_table('transcription_payments')
    with op.batch_alter_table('payment_receipts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_payment_receipts_invoice_id'))

    op.drop_table('payment_receipts')
    with op.batch_alter_table('chat_unlocks', schema=None) as batch_op:
        batch_op.drop_index('idx_unlocked_at')
        batch_op.drop_index('idx_chat_unlocks_user_space')

    op.drop_table('chat_unlocks')
    with op.batch_alter_table('chat_sessions', schema=None) as batch_op:
        batch_op.drop_index('idx_user_id')
        batch_op.drop_index('idx_session_id')
        batch_op.drop_index('idx_queried_at')

    op.drop_table('chat_sessions')
    with op.batch_alter_table('invoices', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_invoices_user_id'))
        batch_op.drop_index(batch_op.f('ix_invoices_account_id'))
        batch_op.drop_index('idx_invoices_status_expires')

    op.drop_table('invoices')
    with op.batch_alter_table('processing_queue', schema=None) as batch_op:
        batch_op.drop_index('uq_processing_queue_live_space', sqlite_where=sa.text("status IN ('queued', 'processing')"), postgresql_where=sa.text("status IN ('queued', 'processing')"))
        batch_op.drop_index('idx_processing_queue_status')

    op.drop_table('processing_queue')
    with op.batch_alter_table('outbox', schema=None) as batch_op:
        batch_op.drop_index('idx_outbox_status_available')

    op.drop_table('outbox')
    with op.batch_alter_table('credits', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_credits_user_id'))

    op.drop_table('credits')
    with op.batch_alter_table('accounts', schema=None) as batch_op:
        batch_op.drop_index(batch_op.f('ix_accounts_user_id'))

    op.drop_table('accounts')
    with op.batch_alter_table('users', schema=None) as batch_op:
        batch_op.drop_index('idx_wallet')

    op.drop_table('users')
    with op.batch_alter_table('spaces', schema=None) as batch_op:
        batch_op.drop_index('idx_spaces_status')
        batch_op.drop_index('idx_space_id')
        batch_op.drop_index('idx_completed_at')

    op.drop_table('spaces')
