"""The HTTP status of a refusal: one table for every web route, by route family.

Within a family a code always answers the same status. The families differ where the public
API already did before this table existed, and that is kept: ``invalid_format`` is a 404 page
on the storefront but a 400 on the API (a bad query parameter); ``invalid_signature`` is a
400 on the link pages but a 401 on the API (an ``X-Wallet-*`` proof that proves no one);
``invalid_wallet`` is a 400 in an ``X-Wallet-Address`` header but a 401 in a Sign-In-With-X
message, like every other sign-in refusal.
"""

from __future__ import annotations

from enum import StrEnum

from core.refusals import RefusalCode as C
from core.results import Refused


class Family(StrEnum):
    STORE = "store"  # the storefront: /, /spaces/…, /session/challenge, /session/demo, /session/end
    SIGN_IN = "sign_in"  # a signed sign-in refused: POST /session, SIGN-IN-WITH-X on the API
    LINK = "link"  # wallet linking: /link/…
    PAY = "pay"  # the pay page: /pay/…
    API = "api"  # the x402 API: /x402/…, /api/spaces/…


TRY_LATER = 503  # a refusal marked retry_later (chain or facilitator down): nothing was charged

STATUS: dict[Family, dict[str, int]] = {
    Family.STORE: {
        C.INVALID_SPACE: 400,
        C.INVALID_INPUT: 400,
        C.EMPTY_QUESTION: 400,
        C.QUESTION_TOO_LONG: 400,
        C.EMPTY_QUERY: 400,
        C.QUERY_TOO_LONG: 400,
        C.BAD_FORM: 400,
        C.INVALID_ADDRESS: 400,
        C.NOT_SIGNED_IN: 401,
        C.NOT_OWNED: 403,
        C.NOT_UNLOCKED: 403,
        C.TEST_MODE_ONLY: 403,
        C.CROSS_SITE: 403,
        C.BAD_CSRF: 403,
        C.UNKNOWN_SPACE: 404,
        C.INVALID_FORMAT: 404,  # /spaces/{id}/transcript.{fmt}: no such file
        C.UNKNOWN_PAGE: 404,
    },
    Family.SIGN_IN: {},
    Family.LINK: {
        C.UNKNOWN_LINK: 404,
        C.LINK_EXPIRED: 410,
        C.LINK_USED: 410,
    },
    Family.PAY: {
        C.INVALID_ADDRESS: 400,
        C.INVALID_PAYLOAD: 400,
        C.TEST_MODE_ONLY: 403,
        C.UNKNOWN_INVOICE: 404,
    },
    Family.API: {
        C.INVALID_SPACE: 400,
        C.EMPTY_QUESTION: 400,
        C.QUESTION_TOO_LONG: 400,
        C.TOO_MANY_SPACES: 400,
        C.INVALID_FORMAT: 400,
        C.INVALID_PAYMENT_HEADER: 400,
        C.INVALID_PAYMENT_IDENTIFIER: 400,
        C.INCOMPLETE_WALLET_PROOF: 400,
        C.INVALID_WALLET: 400,
        C.STALE_SIGNATURE: 401,
        C.INVALID_SIGNATURE: 401,
        C.NOT_OWNED: 403,
        C.UNKNOWN_SPACE: 404,
        C.NOT_FOUND: 404,
        C.NOT_READY: 409,
        C.PAYMENT_ID_CONFLICT: 409,
        C.AUTHORIZATION_CONFLICT: 409,
        C.REQUEST_IN_PROGRESS: 409,
        # the Space itself cannot be transcribed: the family's default, 422
        C.SPACE_NOT_FOUND: 422,
        C.SPACE_PRIVATE: 422,
        C.SPACE_NO_REPLAY: 422,
        C.SPACE_UNAVAILABLE: 422,
        # about us or the network, not the request: ask again later
        C.METADATA_UNAVAILABLE: 503,
        C.SPACE_UNREACHABLE: 503,
        C.X_REFUSES_US: 503,
        C.CHAT_UNAVAILABLE: 503,
        C.PAYMENTS_UNAVAILABLE: 503,
        C.RPC_UNAVAILABLE: 503,
    },
}

# a code the family does not list: the storefront and the pay page cannot do it now (409),
# a link or its signature is wrong (400), a Space check's new reason is the Space's (422)
DEFAULT: dict[Family, int] = {
    Family.STORE: 409,
    Family.SIGN_IN: 401,
    Family.LINK: 400,
    Family.PAY: 409,
    Family.API: 422,
}


def status(family: Family, refusal: Refused) -> int:
    if refusal.retry_later:
        return TRY_LATER
    return STATUS[family].get(refusal.code, DEFAULT[family])
