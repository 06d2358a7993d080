"""An agent with only the official MCP client and x402's MCP client (``x402.mcp``) finds,
buys and reads a transcript and asks a question, paying on anvil: over streamable HTTP
(uvicorn, ``/mcp``) and over stdio (``spacescribe mcp`` as a process of its own).
Unpaid, underpaid, replayed and wrong-network payments are refused with their reasons."""

from __future__ import annotations

import asyncio
import os
import sys
from collections.abc import AsyncIterator
from contextlib import AbstractAsyncContextManager, asynccontextmanager
from pathlib import Path
from typing import Any

import pytest
import uvicorn
from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client
from mcp.client.streamable_http import streamablehttp_client
from mcp.types import CallToolResult
from sqlalchemy import func, select
from x402.extensions.bazaar import BAZAAR, validate_discovery_extension
from x402.extensions.payment_identifier import PAYMENT_IDENTIFIER
from x402.extensions.sign_in_with_x import SIGN_IN_WITH_X
from x402.mcp import MCP_PAYMENT_META_KEY, x402MCPSession
from x402.schemas import PaymentRequired, SettleResponse

from bot.wiring import web_app, wire
from core.context import Context
from core.db import ChatSession, ChatUnlock, PaymentReceipt, TranscriptionPayment
from tests.chat.helpers import add_space, space_id_for
from tests.discord.conftest import SEGMENTS
from tests.payments.conftest import make_async_client, signed_payload
from tests.payments.test_x402_idempotency import _siwx
from tests.stand_ins.chain import Chain, free_port

SID = space_id_for(1)
SID2 = space_id_for(2)  # bought and read in one paid get_transcript call
PUBLIC = "http://127.0.0.1:8080"  # pay_ctx's web.public_url: what SIWX messages bind to
TOOLS = {
    "search_spaces",
    "space_status",
    "buy_transcript",
    "unlock_chat",
    "ask_spaces",
    "get_transcript",
}
Connect = AbstractAsyncContextManager[ClientSession]


async def library(ctx: Context) -> None:
    """Two completed Spaces in the library, their transcripts on disk and indexed for chat."""
    await add_space(ctx, 1, SEGMENTS, title="Launch planning weekly", participants=["alice"])
    await add_space(ctx, 2, SEGMENTS, title="Budget review", participants=["bob"])
    for sid in (SID, SID2):
        path = ctx.spaces_dir / sid / "transcript.md"
        path.parent.mkdir(parents=True, exist_ok=True)
        path.write_text(f"# {sid}\n\n[00:00:05] bob: The launch date is the ninth of May.\n")


@asynccontextmanager
async def http_session(ctx: Context) -> AsyncIterator[ClientSession]:
    wire(ctx)  # as `spacescribe run` (idempotent): paid tools answer before settlement
    port = free_port()
    cfg = uvicorn.Config(web_app(ctx), host="127.0.0.1", port=port, log_config=None)
    cfg.lifespan = "off"  # /mcp needs no lifespan: one stateless exchange per request
    srv = uvicorn.Server(cfg)
    task = asyncio.create_task(srv.serve())
    while not srv.started:
        await asyncio.sleep(0.02)
    try:
        async with (
            streamablehttp_client(f"http://127.0.0.1:{port}/mcp") as (read, write, _),
            ClientSession(read, write) as session,
        ):
            await session.initialize()
            yield session
    finally:
        srv.should_exit = True
        await task


def cli_env(ctx: Context, chain: Chain) -> dict[str, str]:
    """``spacescribe mcp``'s configuration, from the environment as an operator sets it."""
    p = ctx.settings.payments
    env = {k: v for k, v in os.environ.items() if k not in ("OPENAI_API_KEY",)}
    env.update(
        SPACESCRIBE_DATABASE_URL=ctx.settings.database.url,
        SPACESCRIBE_DATA_DIR=str(ctx.settings.resolve_path(ctx.settings.data_dir)),
        SPACESCRIBE_WEB__PUBLIC_URL=PUBLIC,
        SPACESCRIBE_PAYMENTS__NETWORK=p.network,
        SPACESCRIBE_PAYMENTS__RPC_URL=p.rpc_url,
        SPACESCRIBE_PAYMENTS__TOKEN_ADDRESS=p.token_address,
        SPACESCRIBE_PAYMENTS__PAY_TO=p.pay_to,
        SPACESCRIBE_PAYMENTS__CONFIRMATIONS="1",
        SPACESCRIBE_RELAYER_KEY=chain.relayer_key,
    )
    return env


@asynccontextmanager
async def stdio_session(ctx: Context, chain: Chain) -> AsyncIterator[ClientSession]:
    params = StdioServerParameters(
        command=sys.executable,
        args=["-m", "bot.cli", "mcp"],
        env=cli_env(ctx, chain),
        cwd=str(Path(__file__).resolve().parents[2]),
    )
    async with (
        stdio_client(params) as (read, write),
        ClientSession(read, write) as session,
    ):
        await session.initialize()
        yield session


def required(result: CallToolResult) -> PaymentRequired:
    """The PaymentRequired of an unpaid or refused paid call (x402's MCP transport)."""
    assert result.isError, result
    assert isinstance(result.structuredContent, dict), result
    return PaymentRequired.model_validate(result.structuredContent)


async def agent_journey(session: ClientSession, chain: Chain, account: Any) -> None:
    """Find, buy, read, unlock, ask: what the issue's "Done when" asks, step by step."""
    before = chain.balance(chain.pay_to)
    assert {t.name for t in (await session.list_tools()).tools} == TOOLS
    found = await session.call_tool("search_spaces", {"words": "launch"})
    assert not found.isError, found
    assert [s["space_id"] for s in found.structuredContent["spaces"]] == [SID]  # type: ignore[index]
    status = await session.call_tool("space_status", {"space": SID})
    assert status.structuredContent["status"] == "completed"  # type: ignore[index]

    agent = x402MCPSession(session, make_async_client(chain, account))
    bought = await agent.call_tool("buy_transcript", {"space": f"https://x.com/i/spaces/{SID}"})
    assert bought.payment_made and not bought.is_error, bought.content
    assert isinstance(bought.payment_response, SettleResponse)
    assert bought.payment_response.success and bought.payment_response.transaction
    assert bought.raw_result.structuredContent["paid"] is True
    assert chain.balance(chain.pay_to) == before + 200_000

    # read it: Sign-In-With-X answers the challenge the unpaid call declares
    pr = required(await session.call_tool("get_transcript", {"space": SID}))
    siwx = await _siwx(account, pr, url=PUBLIC + "/mcp/get_transcript")
    got = await session.call_tool("get_transcript", {"space": SID, "sign_in_with_x": siwx})
    assert not got.isError and "ninth of May" in got.content[0].text, got  # type: ignore[union-attr]
    again = await session.call_tool("get_transcript", {"space": SID, "sign_in_with_x": siwx})
    assert again.structuredContent["error"] == "invalid_siwx_nonce_used"  # type: ignore[index]

    unlocked = await agent.call_tool("unlock_chat", {"space": SID})
    assert unlocked.payment_made and not unlocked.is_error, unlocked.content
    answered = await agent.call_tool(
        "ask_spaces", {"question": "When is the launch date?", "spaces": [SID]}
    )
    assert answered.payment_made and not answered.is_error, answered.content
    answer = answered.raw_result.structuredContent["answer"]
    assert "ninth of May" in answer["answer"] and answer["sources"][0]["spaceId"] == SID
    assert chain.balance(chain.pay_to) == before + 200_000 + 500_000 + 1_000_000
    # buying what it owns charges nothing
    owned = await agent.call_tool("buy_transcript", {"space": SID})
    assert owned.raw_result.structuredContent["already_owned"] is True
    assert chain.balance(chain.pay_to) == before + 1_700_000
    # get_transcript without a sign-in is a purchase whose answer carries the text
    read = await agent.call_tool("get_transcript", {"space": SID2})
    assert read.payment_made and not read.is_error, read.content
    assert read.payment_response.success  # type: ignore[union-attr]
    assert f"# {SID2}" in read.content[-1].text and "ninth of May" in read.content[-1].text
    assert chain.balance(chain.pay_to) == before + 1_900_000


async def records(ctx: Context) -> tuple[int, int, int, int]:
    async with ctx.db.session() as s:
        return tuple(  # type: ignore[return-value]
            [
                await s.scalar(select(func.count()).select_from(t))
                for t in (TranscriptionPayment, ChatUnlock, ChatSession, PaymentReceipt)
            ]
        )


async def test_an_agent_finds_buys_reads_and_asks_over_http(
    pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    await library(pay_ctx)
    async with http_session(pay_ctx) as session:
        await agent_journey(session, chain, fresh_payer)
    assert await records(pay_ctx) == (2, 1, 1, 4)


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_an_agent_finds_buys_reads_and_asks_over_stdio(
    db_url: str, pay_ctx: Context, chain: Chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    await library(pay_ctx)
    async with stdio_session(pay_ctx, chain) as session:
        await agent_journey(session, chain, fresh_payer)
    assert await records(pay_ctx) == (2, 1, 1, 4)


@pytest.mark.parametrize("transport", ["http", "stdio"])
@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_bad_payments_are_refused_with_their_reasons(
    db_url: str, pay_ctx: Context, chain: Chain, fresh_payer, transport: str
) -> None:  # type: ignore[no-untyped-def]
    await library(pay_ctx)
    before = chain.balance(chain.pay_to)
    connect = http_session(pay_ctx) if transport == "http" else stdio_session(pay_ctx, chain)
    async with connect as session:
        # unpaid: the PaymentRequired, with discovery and idempotency declared
        pr = required(await session.call_tool("buy_transcript", {"space": SID}))
        assert pr.accepts[0].amount == "200000" and pr.error == "Payment required"
        assert pr.resource is not None and pr.resource.url == "mcp://tool/buy_transcript"
        ext = pr.extensions or {}
        assert validate_discovery_extension(ext[BAZAAR.key]).valid
        assert ext[BAZAAR.key]["info"]["input"]["toolName"] == "buy_transcript"
        assert PAYMENT_IDENTIFIER in ext and SIGN_IN_WITH_X not in ext
        reqs = pr.accepts[0]

        async def pay(tool: str, args: dict[str, Any], payload: dict[str, Any]) -> CallToolResult:
            return await session.call_tool(tool, args, meta={MCP_PAYMENT_META_KEY: payload})

        under = signed_payload(chain, fresh_payer, reqs, value=100_000)
        refused = required(await pay("buy_transcript", {"space": SID}, under))
        assert refused.error == "The amount does not match the price."
        other = signed_payload(chain, fresh_payer, reqs)
        other["accepted"]["network"] = "eip155:8453"
        refused = required(await pay("buy_transcript", {"space": SID}, other))
        assert refused.error == "The payment is for another chain."
        garbage = await pay("buy_transcript", {"space": SID}, {"x402Version": 2})
        assert garbage.structuredContent["error"] == "invalid_payment"  # type: ignore[index]
        assert chain.balance(chain.pay_to) == before and await records(pay_ctx) == (0, 0, 0, 0)

        good = signed_payload(chain, fresh_payer, reqs)
        first = await pay("buy_transcript", {"space": SID}, good)
        assert not first.isError and first.structuredContent["paid"] is True, first  # type: ignore[index]
        assert first.meta and first.meta["x402/payment-response"]["success"] is True
        # replayed: the same call gets the same answer and is charged once...
        replay = await pay("buy_transcript", {"space": SID}, good)
        assert replay.model_dump() == first.model_dump()
        # ...and the same authorization for another request is refused
        moved = await pay("unlock_chat", {"space": SID}, good)
        assert moved.structuredContent["error"] == "authorization_conflict", moved  # type: ignore[index]
        # a payment signed for another price (an unlock's) does not buy an answer
        unlock_reqs = required(await session.call_tool("unlock_chat", {"space": SID})).accepts[0]
        chat_only = await pay("ask_spaces", {"question": "when?", "spaces": [SID]},
                              signed_payload(chain, fresh_payer, unlock_reqs))  # fmt: skip
        assert required(chat_only).error == "The amount does not match the price."
    assert chain.balance(chain.pay_to) == before + 200_000
    assert await records(pay_ctx) == (1, 0, 0, 1)
