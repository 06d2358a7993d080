"""The access drill's MCP surface: every tool × every role, over ``POST /mcp`` (JSON-RPC,
streamable HTTP, stateless) on the drill's web app.

An MCP caller is its wallet: it pays with an x402 payload in ``_meta["x402/payment"]`` or
signs in with Sign-In-With-X (``get_transcript``). Each role uses its own wallet. As on the
HTTP API, a role whose valid payment would buy Space A signs a refused amount instead, so
the drill changes nothing it does not mean to.
"""

from __future__ import annotations

import json
from typing import Any

import httpx
from x402.extensions.sign_in_with_x import create_siwx_payload, encode_siwx_header
from x402.mcp import MCP_PAYMENT_META_KEY

from core.context import Context
from core.payments import siwx as siwx_auth
from tests.drills.access_world import (
    CHAPTER_A,
    PASSAGE_A,
    QUESTION,
    ROLES,
    TRANSCRIPT_A,
    Person,
    World,
)
from tests.payments.conftest import client_payload, signed_payload
from tests.payments.test_x402_pay import _reqs
from tests.stand_ins.chain import Chain

Cells = dict[tuple[str, str, str], str]
HEADERS = {"Accept": "application/json, text/event-stream"}


def rpc(method: str, params: dict[str, Any] | None = None) -> dict[str, Any]:
    return {"jsonrpc": "2.0", "id": 1, "method": method, "params": params or {}}


def _payment(ctx: Context, chain: Chain, p: Person, units: int, wrong: bool) -> dict[str, Any]:
    reqs = _reqs(ctx, units)
    if wrong:  # 1 unit: always refused, nothing bought
        return signed_payload(chain, p.wallet, reqs, value=1)
    return client_payload(chain, p.wallet, reqs)


async def _siwx(ctx: Context, p: Person) -> str:
    ext = siwx_auth.declaration(ctx, "/mcp/get_transcript")
    chain_id = ext["supportedChains"][0]["chainId"]
    info = {**ext["info"], "chainId": chain_id, "type": "eip191"}
    return encode_siwx_header(await create_siwx_payload(info, p.wallet, ext["info"]["uri"]))


Call = tuple[str, dict[str, Any], dict[str, Any] | None]


async def mcp_entries(w: World, ctx: Context, chain: Chain, p: Person) -> dict[str, list[Call]]:
    a, role, owners = w.a, p.role, ("owner", "unlocked")

    def pay(units: int, wrong: bool = False) -> dict[str, Any]:
        return {MCP_PAYMENT_META_KEY: _payment(ctx, chain, p, units, wrong)}

    return {
        "search_spaces": [
            ("search_spaces", {"words": words}, None)
            for words in ("agreed budget", "reserve", "alpha")
        ],
        "space_status": [("space_status", {"space": s}, None) for s in (a, w.p, w.w)],
        "buy_transcript": [("buy_transcript", {"space": a}, pay(200_000, role not in owners))],
        "unlock_chat": [("unlock_chat", {"space": a}, pay(500_000, role == "owner"))],
        "ask_spaces": [("ask_spaces", {"question": QUESTION, "spaces": [a]}, pay(1_000_000))],
        "get_transcript": [
            ("get_transcript", {"space": s, "sign_in_with_x": await _siwx(ctx, p)}, None)
            for s in (a, w.p, w.w)
        ]
        + [("get_transcript", {"space": a}, None)],  # neither: the price and a challenge
    }


async def listed_tools(web: httpx.AsyncClient) -> set[str]:
    r = await web.post("/mcp", json=rpc("tools/list"), headers=HEADERS)
    assert r.status_code == 200, r.text
    return {t["name"] for t in r.json()["result"]["tools"]}


async def mcp_matrix(
    w: World, ctx: Context, chain: Chain, web: httpx.AsyncClient
) -> tuple[Cells, dict[tuple[str, str], list[dict[str, Any]]]]:
    cells: Cells = {}
    results: dict[tuple[str, str], list[dict[str, Any]]] = {}
    for role in ROLES:
        entries = await mcp_entries(w, ctx, chain, w.people[role])
        for tool, calls in entries.items():
            texts, got = [], []
            for name, args, meta in calls:
                params: dict[str, Any] = {"name": name, "arguments": args}
                if meta is not None:
                    params["_meta"] = meta
                r = await web.post("/mcp", json=rpc("tools/call", params), headers=HEADERS)
                assert r.status_code == 200, r.text
                result = r.json()["result"]
                got.append(result)
                texts.append(json.dumps(result))
            cells[("mcp", tool, role)] = "\n".join(texts)
            results[(tool, role)] = got
    return cells, results


def _error(r: dict[str, Any]) -> str | None:
    sc = r.get("structuredContent") or {}
    return sc.get("error") if r.get("isError") else None


def check_mcp(w: World, cells: Cells, results: dict[tuple[str, str], list[dict[str, Any]]]) -> None:
    said = {(e, r): t for (_s, e, r), t in cells.items()}
    owners = ("owner", "unlocked")
    for role in ROLES:
        # anonymous search: titles and the teaser for everybody, passages for nobody
        assert "Alpha weekly" in said[("search_spaces", role)], role
        assert PASSAGE_A not in said[("search_spaces", role)], role
        assert CHAPTER_A in said[("space_status", role)], role
        a, p, ww, unsigned = results[("get_transcript", role)]
        assert (TRANSCRIPT_A in a["content"][-1]["text"]) == (role in owners), (role, a)
        if role not in owners:  # not bought: the price to buy it, with the reason
            assert a["structuredContent"]["error"] == f"This wallet has not bought Space {w.a}."
            assert a["structuredContent"]["accepts"], a
        if role == "payer":  # P is the payer's, still processing
            assert _error(p) == "not_ready", p
        else:
            assert "accepts" in p["structuredContent"], (role, p)
        assert "accepts" in json.dumps(ww) and "zqxtranscriptwhale" not in json.dumps(ww)
        assert "sign-in-with-x" in unsigned["structuredContent"]["extensions"], unsigned
        (bought,) = results[("buy_transcript", role)]
        if role in owners:  # a member never pays twice
            assert bought["structuredContent"]["already_owned"] is True, bought
        else:
            assert bought["structuredContent"]["error"] == "The amount does not match the price."
        (unlock,) = results[("unlock_chat", role)]
        if role == "unlocked":
            assert unlock["structuredContent"]["already_owned"] is True, unlock
        elif role == "owner":
            assert unlock["structuredContent"]["error"] == "The amount does not match the price."
        else:
            assert _error(unlock) == "not_owned", unlock
        (asked,) = results[("ask_spaces", role)]
        assert (PASSAGE_A in json.dumps(asked)) == (role == "unlocked"), (role, asked)
        assert asked.get("isError", False) == (role != "unlocked"), (role, asked)
