"""The bad-input corpus of the MCP tools: ``(tool, arguments, _meta)`` built from the world,
each with the specific error the agent must read (a phrase of the tool result's text; for a
refused payment, the x402 PaymentRequired's ``error``). Imported by ``tests.drills.corpus``."""

from __future__ import annotations

import base64
import json
from collections.abc import Callable
from typing import Any

from x402.mcp import MCP_PAYMENT_META_KEY

from tests.drills.bad_input_world import (
    ELEVEN,
    FRESH,
    OWNED,
    OWNED_UNLOCKED,
    PAID_SPACE,
    UNKNOWN,
    UNRECORDED,
    World,
    now,
)
from tests.drills.corpus import (
    _LINKS,
    AMOUNT,
    BAD_FORMAT,
    BROKE,
    CHAIN,
    EARLY_AUTH,
    EMPTY_SEARCH,
    EXPIRED_AUTH,
    LONG_SEARCH,
    NEEDS_TRANSCRIPT,
    NO_SPACE,
    NONCE_USED,
    ONLY_X,
    RECIPIENT,
    SCHEME,
    SIG,
    TOKEN,
    UNKNOWN_STATUS,
    UNRECORDED_MSG,
    Case,
)

NOT_PAYLOAD = "The payment in _meta x402/payment is not an x402 v2 payment payload"
TOO_LONG = "String should have at most 2048 characters"
Meta = Callable[[World], dict[str, Any]] | None


def _mcp(name: str, tool: str, args: dict[str, Any], expect: str, meta: Meta = None) -> Case:
    def send(w: World) -> tuple[str, dict[str, Any], dict[str, Any] | None]:
        return tool, args, meta(w) if meta else None

    return Case("mcp", name, send, expect)


def _paid(build: Callable[[World], Any]) -> Meta:
    return lambda w: {MCP_PAYMENT_META_KEY: build(w)}


def _signed(kind: str = "transcription", **sign: Any) -> Meta:
    def build(w: World) -> Any:
        return w.payload(kind, **{k: (v(w) if callable(v) else v) for k, v in sign.items()})

    return _paid(build)


def _forged(kind: str = "transcription", **forge: Any) -> Meta:
    def build(w: World) -> Any:
        return w.forged(kind, **{k: (v(w) if callable(v) else v) for k, v in forge.items()})

    return _paid(build)


def _siwx(**change: Any) -> str:
    """A Sign-In-With-X payload the server must refuse (no valid one: it would use a nonce)."""
    info = {
        "domain": "evil.example",
        "address": "0x" + "11" * 20,
        "statement": "sign in",
        "uri": "https://evil.example/mcp/get_transcript",
        "version": "1",
        "chainId": "eip155:31337",
        "type": "eip191",
        "nonce": "a1b2c3d4e5f6a7b8",
        "issuedAt": "2026-01-01T00:00:00.000Z",
        "signature": "0x" + "22" * 65,
        **change,
    }
    return base64.b64encode(json.dumps(info).encode()).decode()


SP = {"space": FRESH}
ASK = {"question": "what was decided?", "spaces": [OWNED_UNLOCKED]}

MCP: list[Case] = [
    # ------------------------------------------------ Space links, in every tool that takes one
    *[_mcp(f"buy_transcript: {what}", "buy_transcript", {"space": link}, phrase)
      for what, link, phrase in _LINKS if len(link) <= 2048],
    _mcp("buy_transcript: over-long link", "buy_transcript", {"space": "A" * 3000}, TOO_LONG),
    _mcp("buy_transcript: empty", "buy_transcript", {"space": ""}, NO_SPACE),
    _mcp("buy_transcript: number", "buy_transcript", {"space": 123}, "valid string"),
    _mcp("buy_transcript: no argument", "buy_transcript", {}, "Field required"),
    _mcp("buy_transcript: unrecorded Space", "buy_transcript", {"space": UNRECORDED},
         UNRECORDED_MSG),
    _mcp("space_status: unknown", "space_status", {"space": UNKNOWN}, UNKNOWN_STATUS),
    _mcp("space_status: traversal", "space_status", {"space": "../../etc/passwd"}, ONLY_X),
    _mcp("space_status: list", "space_status", {"space": [FRESH]}, "valid string"),
    _mcp("unlock_chat: traversal", "unlock_chat", {"space": "%2e%2e/%2e%2e/etc"}, ONLY_X),
    _mcp("get_transcript: traversal", "get_transcript", {"space": "../x"}, ONLY_X),
    _mcp("get_transcript: format pdf", "get_transcript", {"space": OWNED, "format": "pdf"},
         BAD_FORMAT),
    _mcp("get_transcript: format traversal", "get_transcript",
         {"space": OWNED, "format": "../md"}, BAD_FORMAT),
    # ------------------------------------------------ search
    _mcp("search_spaces: too long", "search_spaces", {"words": "w" * 201}, LONG_SEARCH),
    _mcp("search_spaces: empty", "search_spaces", {"words": "  "}, EMPTY_SEARCH),
    _mcp("search_spaces: only punctuation", "search_spaces", {"words": "*** ?!"},
         EMPTY_SEARCH),
    # ------------------------------------------------ questions
    _mcp("ask_spaces: empty question", "ask_spaces", {"question": "", "spaces": [OWNED]},
         "at least 1 character"),
    _mcp("ask_spaces: over-long question", "ask_spaces",
         {"question": "q" * 1001, "spaces": [OWNED]}, "At most 1000 characters"),
    _mcp("ask_spaces: control characters", "ask_spaces",
         {"question": "\x00\x1b\u200b \x7f", "spaces": [OWNED]}, "The question is empty"),
    _mcp("ask_spaces: no Spaces", "ask_spaces", {"question": "q", "spaces": []},
         "at least 1 item"),
    _mcp("ask_spaces: eleven Spaces", "ask_spaces", {"question": "q", "spaces": ELEVEN},
         "At most 10 Spaces per question"),
    _mcp("ask_spaces: traversal as Space", "ask_spaces",
         {"question": "q", "spaces": ["../../etc"]}, ONLY_X),
    _mcp("ask_spaces: Spaces not a list", "ask_spaces", {"question": "q", "spaces": OWNED},
         "valid list"),
    # ------------------------------------------------ _meta["x402/payment"]
    _mcp("payment: a string", "buy_transcript", SP, NOT_PAYLOAD,
         lambda w: {MCP_PAYMENT_META_KEY: "not json"}),
    _mcp("payment: empty object", "buy_transcript", SP, NOT_PAYLOAD, _paid(lambda w: {})),
    _mcp("payment: x402 v1", "buy_transcript", SP, NOT_PAYLOAD,
         _forged(top={"x402Version": 1})),
    _mcp("payment: no payer", "buy_transcript", SP, NOT_PAYLOAD, _forged(auth={"from": None})),
    _mcp("payment: forged signature", "buy_transcript", SP, SIG, _forged(sig="0x" + "11" * 65)),
    _mcp("payment: signed by someone else", "buy_transcript", SP, SIG,
         _signed(signer=lambda w: w.payer)),
    _mcp("payment: underpaid", "buy_transcript", SP, AMOUNT, _signed(value=100_000)),
    _mcp("payment: accepted amount lowered", "buy_transcript", SP, AMOUNT,
         _forged(accepted={"amount": "1"})),
    _mcp("payment: to another address", "buy_transcript", SP, RECIPIENT,
         _signed(to=lambda w: w.chain.other.address)),
    _mcp("payment: another token", "buy_transcript", SP, TOKEN,
         _forged(accepted={"asset": "0x" + "77" * 20})),
    _mcp("payment: another network", "buy_transcript", SP, CHAIN,
         _forged(accepted={"network": "eip155:8453"})),
    _mcp("payment: signed for another chain", "buy_transcript", SP, SIG,
         _signed(chain_id=8453)),
    _mcp("payment: another scheme", "buy_transcript", SP, SCHEME,
         _forged(accepted={"scheme": "upto"})),
    _mcp("payment: expired", "buy_transcript", SP, EXPIRED_AUTH,
         _signed(valid_before=lambda w: now() - 60)),
    _mcp("payment: not valid yet", "buy_transcript", SP, EARLY_AUTH,
         _signed(valid_after=lambda w: now() + 3600)),
    _mcp("payment: replayed (spent) authorization", "buy_transcript", SP, NONCE_USED,
         _signed(account=lambda w: w.payer, nonce=lambda w: w.spent_nonce)),
    _mcp("payment: payer without USDC", "buy_transcript", SP, BROKE,
         _signed(account=lambda w: w.broke)),
    _mcp("unlock_chat: a Space the payer does not own", "unlock_chat", SP, NEEDS_TRANSCRIPT,
         _signed("chat_unlock")),
    _mcp("ask_spaces: the payer does not own the Space", "ask_spaces", ASK,
         "This wallet has not bought the transcript of Space", _signed("chat_query")),
    _mcp("ask_spaces: signed for one Space's less", "ask_spaces", ASK, AMOUNT,
         _signed("chat_query", value=900_000)),
    # ------------------------------------------------ Sign-In-With-X
    _mcp("get_transcript: SIWX not base64", "get_transcript",
         {"space": PAID_SPACE, "sign_in_with_x": "not-base64!!"}, "SIGN-IN-WITH-X is not"),
    _mcp("get_transcript: SIWX for another website", "get_transcript",
         {"space": PAID_SPACE, "sign_in_with_x": _siwx()}, "for another website"),
    _mcp("get_transcript: SIWX too long", "get_transcript",
         {"space": PAID_SPACE, "sign_in_with_x": "A" * 9000}, "at most 8192 characters"),
    _mcp("unknown tool", "delete_everything", {}, "Unknown tool"),
]  # fmt: skip
