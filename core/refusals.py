"""Every refusal code the product emits: the ``code`` of a :class:`core.results.Refused`.

Members compare equal to (and hash like) their strings, so modules that still spell a code
as a literal agree with the ones that name it here. The reasons the x402 package returns
(``invalid_exact_evm_*``, ``network_mismatch``...) are passed on as they come and are not
listed: they are that package's vocabulary, not ours.
"""

from __future__ import annotations

from enum import StrEnum


class RefusalCode(StrEnum):
    # what was asked for: a Space, a question, a search
    INVALID_INPUT = "invalid_input"
    INVALID_SPACE = "invalid_space"
    UNKNOWN_SPACE = "unknown_space"
    DUPLICATE_SPACES = "duplicate_spaces"
    NO_SPACES = "no_spaces"
    TOO_MANY_SPACES = "too_many_spaces"
    CONTROL_CHARACTERS = "control_characters"
    EMPTY_QUESTION = "empty_question"
    QUESTION_TOO_LONG = "question_too_long"
    EMPTY_QUERY = "empty_query"
    QUERY_TOO_LONG = "query_too_long"
    INVALID_FORMAT = "invalid_format"
    INVALID_PERIOD = "invalid_period"

    # the Space as X knows it, checked before anyone pays (core.pipeline.run.check_space)
    SPACE_NOT_FOUND = "space_not_found"
    SPACE_PRIVATE = "space_private"
    SPACE_NO_REPLAY = "space_no_replay"
    SPACE_UNAVAILABLE = "space_unavailable"
    SPACE_UNREACHABLE = "space_unreachable"
    X_REFUSES_US = "x_refuses_us"
    METADATA_UNAVAILABLE = "metadata_unavailable"

    # access to what was bought
    NOT_OWNED = "not_owned"
    NOT_READY = "not_ready"
    FAILED = "failed"
    NOT_COMPLETED = "not_completed"
    NOT_UNLOCKED = "not_unlocked"
    NOT_LINKED = "not_linked"
    NOT_ADMIN = "not_admin"

    # chat answers
    CHAT_UNAVAILABLE = "chat_unavailable"
    ANSWER_UNAVAILABLE = "answer_unavailable"
    UNKNOWN_ANSWER = "unknown_answer"
    INVALID_ANSWER_ID = "invalid_answer_id"
    UNANSWERED_REFUNDED = "unanswered_refunded"

    # admin imports
    ALREADY_TRANSCRIBED = "already_transcribed"
    BEING_PROCESSED = "being_processed"
    IMPORT_EMPTY = "import_empty"
    IMPORT_FOLDER = "import_folder"
    IMPORT_MISSING = "import_missing"
    IMPORT_NOT_AUDIO = "import_not_audio"
    IMPORT_NOT_FILE = "import_not_file"
    IMPORT_TOO_BIG = "import_too_big"
    IMPORT_TOO_LONG = "import_too_long"
    IMPORT_UNREADABLE = "import_unreadable"

    # test mode and the demo
    LIVE_MODE = "live_mode"
    DEMO_UNAVAILABLE = "demo_unavailable"
    TEST_MODE_ONLY = "test_mode_only"

    # paying an invoice in USDC (core.payments.outcomes.MESSAGES and the payment steps)
    INVALID_PAYLOAD = "invalid_payload"
    INVALID_PAYMENT = "invalid_payment"
    UNKNOWN_INVOICE = "unknown_invoice"
    INVOICE_EXPIRED = "invoice_expired"
    USDC_OFF = "usdc_off"
    ALREADY_PAID = "already_paid"
    PAYMENT_IN_PROGRESS = "payment_in_progress"
    NONCE_USED = "nonce_used"
    RPC_UNAVAILABLE = "rpc_unavailable"
    PAYMENTS_UNAVAILABLE = "payments_unavailable"
    NOT_ANSWERED = "not_answered"
    TRANSFER_MISMATCH = "transfer_mismatch"
    SETTLE_FAILED = "settle_failed"

    # a plain USDC transfer named by its hash (core.payments.transfers)
    INVALID_TX_HASH = "invalid_tx_hash"
    TX_ALREADY_USED = "tx_already_used"
    TX_NOT_FOUND = "tx_not_found"
    TX_REVERTED = "tx_reverted"
    NO_MATCHING_TRANSFER = "no_matching_transfer"
    NOT_YOUR_TRANSFER = "not_your_transfer"
    WRONG_AMOUNT = "wrong_amount"

    # Telegram Stars (core.payments.stars)
    STARS_OFF = "stars_off"
    NOT_YOURS = "not_yours"
    EXPIRED = "expired"
    CREDIT_APPLIED = "credit_applied"
    PRICE_CHANGED = "price_changed"
    CURRENCY = "currency"
    OWNED = "owned"

    # idempotent x402 requests (core.payments.idempotency)
    INVALID_PAYMENT_IDENTIFIER = "invalid_payment_identifier"
    PAYMENT_ID_CONFLICT = "payment_id_conflict"
    AUTHORIZATION_CONFLICT = "authorization_conflict"
    REQUEST_IN_PROGRESS = "request_in_progress"

    # a wallet's signature: X-Wallet-* proofs (core.payments.wallet_proof)
    INVALID_WALLET = "invalid_wallet"
    STALE_SIGNATURE = "stale_signature"
    INVALID_SIGNATURE = "invalid_signature"

    # Sign-In-With-X (core.payments.siwx, core.web_sessions)
    INVALID_SIWX_HEADER = "invalid_siwx_header"
    INVALID_SIWX_DOMAIN_MISMATCH = "invalid_siwx_domain_mismatch"
    INVALID_SIWX_URI_MISMATCH = "invalid_siwx_uri_mismatch"
    INVALID_SIWX_ISSUED_AT = "invalid_siwx_issued_at"
    INVALID_SIWX_ISSUED_AT_TOO_OLD = "invalid_siwx_issued_at_too_old"
    INVALID_SIWX_ISSUED_AT_IN_FUTURE = "invalid_siwx_issued_at_in_future"
    INVALID_SIWX_EXPIRATION_TIME = "invalid_siwx_expiration_time"
    INVALID_SIWX_EXPIRED = "invalid_siwx_expired"
    INVALID_SIWX_NOT_BEFORE = "invalid_siwx_not_before"
    INVALID_SIWX_NOT_YET_VALID = "invalid_siwx_not_yet_valid"
    INVALID_SIWX_CHAIN_MISMATCH = "invalid_siwx_chain_mismatch"
    INVALID_SIWX_SIGNATURE = "invalid_siwx_signature"
    INVALID_SIWX_NONCE_USED = "invalid_siwx_nonce_used"

    # wallet linking with SIWE (core.wallet_link)
    UNKNOWN_LINK = "unknown_link"
    LINK_EXPIRED = "link_expired"
    LINK_USED = "link_used"
    INVALID_ADDRESS = "invalid_address"
    MALFORMED_MESSAGE = "malformed_message"
    DOMAIN_MISMATCH = "domain_mismatch"
    URI_MISMATCH = "uri_mismatch"
    NONCE_MISMATCH = "nonce_mismatch"
    MESSAGE_EXPIRED = "message_expired"
    NOT_YET_VALID = "not_yet_valid"
    NO_NONCE = "no_nonce"

    # refused by the web adapter itself, before any core call
    NOT_SIGNED_IN = "not_signed_in"
    CROSS_SITE = "cross_site"
    BAD_CSRF = "bad_csrf"
    BAD_FORM = "bad_form"
    UNKNOWN_PAGE = "unknown_page"
    NOT_FOUND = "not_found"
    INVALID_PAYMENT_HEADER = "invalid_payment_header"
    INCOMPLETE_WALLET_PROOF = "incomplete_wallet_proof"
