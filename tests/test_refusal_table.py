"""The one code → HTTP status table of the web adapter (``adapters.web.refusals``), pinned
code by code: each status is public API, written down from the routes before the table
replaced their own dicts and literals (``tests/test_refusal_routes.py`` asks the real app).
Where a code answers differently in two route families, it did so before."""

from __future__ import annotations

import pytest

from adapters.web.refusals import STATUS, Family, status
from core.refusals import RefusalCode
from core.results import Refused

S, SI, L, P, A = Family.STORE, Family.SIGN_IN, Family.LINK, Family.PAY, Family.API

PINNED = [
    # the storefront's pages (and /session/challenge): listed, else 409
    (S, "invalid_space", 400),
    (S, "invalid_input", 400),
    (S, "empty_question", 400),
    (S, "question_too_long", 400),
    (S, "empty_query", 400),
    (S, "query_too_long", 400),
    (S, "bad_form", 400),
    (S, "invalid_address", 400),
    (S, "not_signed_in", 401),
    (S, "not_owned", 403),
    (S, "not_unlocked", 403),
    (S, "test_mode_only", 403),
    (S, "cross_site", 403),
    (S, "bad_csrf", 403),
    (S, "unknown_space", 404),
    (S, "invalid_format", 404),
    (S, "unknown_page", 404),
    (S, "not_ready", 409),
    (S, "not_completed", 409),
    (S, "space_private", 409),
    (S, "duplicate_spaces", 409),
    # a signed sign-in refused, on the storefront or the API: always 401
    (SI, "invalid_siwx_header", 401),
    (SI, "invalid_siwx_signature", 401),
    (SI, "invalid_siwx_uri_mismatch", 401),
    (SI, "invalid_wallet", 401),
    # wallet linking: listed, else 400
    (L, "unknown_link", 404),
    (L, "link_expired", 410),
    (L, "link_used", 410),
    (L, "invalid_address", 400),
    (L, "malformed_message", 400),
    (L, "invalid_signature", 400),
    (L, "nonce_mismatch", 400),
    (L, "no_nonce", 400),
    # the pay page: listed, retry_later 503, else 409
    (P, "unknown_invoice", 404),
    (P, "invalid_address", 400),
    (P, "invalid_payload", 400),
    (P, "test_mode_only", 403),
    (P, "already_paid", 409),
    (P, "payment_in_progress", 409),
    (P, "invoice_expired", 409),
    (P, "usdc_off", 409),
    (P, "payments_unavailable", 409),
    (P, "invalid_exact_evm_insufficient_balance", 409),  # an x402 reason, as it came
    # the x402 API: listed, retry_later 503, else 422 (a Space check's reason)
    (A, "invalid_space", 400),
    (A, "empty_question", 400),
    (A, "question_too_long", 400),
    (A, "too_many_spaces", 400),
    (A, "invalid_format", 400),
    (A, "invalid_payment_header", 400),
    (A, "invalid_payment_identifier", 400),
    (A, "incomplete_wallet_proof", 400),
    (A, "invalid_wallet", 400),
    (A, "stale_signature", 401),
    (A, "invalid_signature", 401),
    (A, "not_owned", 403),
    (A, "unknown_space", 404),
    (A, "not_found", 404),
    (A, "not_ready", 409),
    (A, "payment_id_conflict", 409),
    (A, "authorization_conflict", 409),
    (A, "request_in_progress", 409),
    (A, "space_not_found", 422),
    (A, "space_private", 422),
    (A, "space_no_replay", 422),
    (A, "space_unavailable", 422),
    (A, "metadata_unavailable", 503),
    (A, "space_unreachable", 503),
    (A, "x_refuses_us", 503),
    (A, "chat_unavailable", 503),
    (A, "payments_unavailable", 503),
    (A, "rpc_unavailable", 503),
]


@pytest.mark.parametrize(("family", "code", "expected"), PINNED)
def test_status_of_each_code(family: Family, code: str, expected: int) -> None:
    assert status(family, Refused(code, "why")) == expected


@pytest.mark.parametrize("family", list(Family))
def test_a_payment_to_retry_later_is_503_everywhere(family: Family) -> None:
    assert status(family, Refused("rpc_unavailable", "down", retry_later=True)) == 503


def test_every_listed_code_is_pinned() -> None:
    pinned = {(f, c) for f, c, _ in PINNED}
    assert {(f, c) for f, table in STATUS.items() for c in table} <= pinned


def test_table_codes_are_the_vocabulary() -> None:
    for table in STATUS.values():
        assert all(isinstance(c, RefusalCode) for c in table), table
