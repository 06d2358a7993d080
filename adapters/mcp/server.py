"""The MCP server (official ``mcp`` SDK, FastMCP): spacescribe's tools for agents.

Free: ``search_spaces``, ``space_status``. Paid through x402's MCP transport
(``adapters.mcp.payments``): ``buy_transcript``, ``unlock_chat``, ``ask_spaces``; and
``get_transcript`` for a wallet that owns the Space (a Sign-In-With-X message, as the
HTTP API's ``SIGN-IN-WITH-X`` header) or pays for it. Prices, access rules and idempotency
are the HTTP API's: every paid call goes through ``core.service.x402_sale``.
Served over stdio (``spacescribe mcp``) and streamable HTTP (``/mcp`` in the web role).
"""

from __future__ import annotations

from typing import Annotated, Any

from mcp.server.fastmcp import Context as McpContext
from mcp.server.fastmcp import FastMCP
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import Field
from x402.extensions.bazaar import DeclareMcpDiscoveryConfig, OutputConfig
from x402.extensions.bazaar import declare_mcp_discovery_extension as declare

from adapters.mcp.payments import McpRender, from_stored, payment_of, refusal, result_json
from core.context import Context
from core.errors import InvalidInput
from core.payments import siwx as siwx_auth
from core.results import Caller, Refused
from core.service import catalog, purchases
from core.service.chat import search
from core.service.listing import EXAMPLES, OUTPUTS
from core.service.views import format_problem, space_json
from core.service.x402_sale import SaleRequest, chat_request, payer_of, sell
from core.spaces import parse_space

INSTRUCTIONS = (
    "spacescribe sells transcripts of X (Twitter) Spaces and answers questions over them, "
    "paid in USDC with x402. Find Spaces with search_spaces, check one with space_status, "
    "buy its transcript with buy_transcript, read it with get_transcript, unlock chat with "
    "unlock_chat, then ask_spaces. Paid tools answer with an x402 PaymentRequired "
    '(isError, structuredContent) until the call carries _meta["x402/payment"].'
)
ANONYMOUS = Caller("mcp", "anonymous")  # no account: search shows titles, never passages

Space = Annotated[str, Field(max_length=2048, description="Space link or 13-character id")]


def _meta(mcp_ctx: McpContext) -> dict[str, Any]:  # type: ignore[type-arg]
    meta = mcp_ctx.request_context.meta
    return dict(meta.model_extra or {}) if meta is not None else {}


def _space(text: str) -> str | CallToolResult:
    try:
        return parse_space(text)
    except InvalidInput as exc:
        return refusal("invalid_space", str(exc))


class Tools:
    """The tools over one application context (one per process)."""

    def __init__(self, ctx: Context, server: FastMCP) -> None:  # type: ignore[type-arg]
        self.ctx = ctx
        self.server = server
        self.discovery: dict[str, dict[str, Any]] = {}

    def declare(self, tool: str, kind: str, description: str) -> None:
        """MCP discovery metadata (bazaar) for a paid tool, from its published schema."""
        params = self.server._tool_manager.get_tool(tool)
        assert params is not None
        self.discovery[tool] = declare(
            DeclareMcpDiscoveryConfig(
                tool_name=tool,
                description=description,
                input_schema=params.parameters,
                transport="streamable-http",
                example=EXAMPLES[kind],
                output=OutputConfig(example=OUTPUTS[kind]),
            )
        )

    def render(self, tool: str, kind: str, n: int = 1, siwx: bool = False) -> McpRender:
        units = purchases.price_units(self.ctx, kind, n)
        what = {"transcription": "transcript", "chat_unlock": "chat unlock"}
        desc = f"spacescribe {what.get(kind, 'answer')}"
        return McpRender(self.ctx, tool, units, desc, self.discovery.get(tool, {}), siwx)

    async def paid(
        self,
        tool: str,
        kind: str,
        sids: list[str],
        meta: dict[str, Any],
        body: dict[str, Any],
        payload: dict[str, Any] | None = None,
        siwx: bool = False,
    ) -> CallToolResult:
        render = self.render(tool, kind, len(sids), siwx)
        p = payment_of(meta)
        if p is None:
            return render.required()
        payer = payer_of(p) if not isinstance(p, str) else None
        if isinstance(p, str) or payer is None:
            return refusal(
                "invalid_payment",
                "The payment in _meta x402/payment is not an x402 v2 payment payload.",
            )
        sale = SaleRequest(f"mcp:{tool}", kind, sids, body, payload)
        return from_stored(await sell(self.ctx, sale, p, payer, render))

    async def buy(
        self, tool: str, sid: str, meta: dict[str, Any], siwx: bool = False
    ) -> CallToolResult:
        checked = await purchases.default_check_space()(self.ctx, sid)
        if isinstance(checked, Refused):
            return refusal(checked.code, checked.message)
        out = await self.paid(
            tool,
            "transcription",
            [sid],
            meta,
            {"space": sid},
            purchases.checked_payload(checked),
            siwx,
        )
        note = getattr(checked, "note", None)
        if note and isinstance(out.structuredContent, dict) and not out.isError:
            out.structuredContent["note"] = note  # a live Space: transcribed when it ends
        return out

    # The tools themselves; build_server registers each under its published signature.

    async def search_spaces(self, words: str) -> CallToolResult:
        hits = await search(self.ctx, ANONYMOUS, words)
        if isinstance(hits, Refused):
            return refusal(hits.code, hits.message)
        return result_json({"spaces": [space_json(h.space) for h in hits]})

    async def space_status(self, space: str) -> CallToolResult:
        view = await catalog.status(self.ctx, space)
        if isinstance(view, Refused):
            return refusal(view.code, view.message)
        return result_json(space_json(view))

    async def buy_transcript(self, space: str, mcp_ctx: McpContext) -> CallToolResult:  # type: ignore[type-arg]
        sid = _space(space)
        if isinstance(sid, CallToolResult):
            return sid
        return await self.buy("buy_transcript", sid, _meta(mcp_ctx))

    async def unlock_chat(self, space: str, mcp_ctx: McpContext) -> CallToolResult:  # type: ignore[type-arg]
        sid = _space(space)
        if isinstance(sid, CallToolResult):
            return sid
        return await self.paid("unlock_chat", "chat_unlock", [sid], _meta(mcp_ctx), {"space": sid})

    async def ask_spaces(
        self,
        question: str,
        spaces: list[str],
        mcp_ctx: McpContext,  # type: ignore[type-arg]
    ) -> CallToolResult:
        sids = chat_request(self.ctx, question, spaces)
        if isinstance(sids, Refused):
            return refusal(sids.code, sids.message)
        return await self.paid(
            "ask_spaces",
            "chat_query",
            sids,
            _meta(mcp_ctx),
            {"question": question, "spaces": sids},
            {"question": question},
        )

    async def get_transcript(
        self,
        space: str,
        mcp_ctx: McpContext,  # type: ignore[type-arg]
        fmt: str,
        sign_in_with_x: str | None,
    ) -> CallToolResult:
        sid = _space(space)
        if isinstance(sid, CallToolResult):
            return sid
        if bad := format_problem(fmt):
            return refusal(bad.code, bad.message)
        meta = _meta(mcp_ctx)
        if sign_in_with_x is None:
            return await self._paid_text(sid, meta, fmt)
        return await self._signed_in_text(sid, sign_in_with_x, fmt)

    async def _paid_text(self, sid: str, meta: dict[str, Any], fmt: str) -> CallToolResult:
        """``get_transcript`` paid as ``buy_transcript``: once paid, the text follows."""
        out = await self.buy("get_transcript", sid, meta, siwx=True)
        payer = out.structuredContent.get("payer") if out.structuredContent else None
        if out.isError or not isinstance(payer, str) or out.structuredContent is None:
            return out
        if out.structuredContent.get("paid") is not True:
            return out
        return await self._with_text(out, sid, payer, fmt)  # the payment proved the wallet

    async def _with_text(
        self, out: CallToolResult, sid: str, payer: str, fmt: str
    ) -> CallToolResult:
        t = await purchases.transcript_for_wallet(self.ctx, sid, payer, fmt)
        if not isinstance(t, Refused):
            out.content = [
                *out.content,
                TextContent(type="text", text=t.content.decode()),
            ]
        return out

    async def _signed_in_text(self, sid: str, sign_in_with_x: str, fmt: str) -> CallToolResult:
        """``get_transcript`` for the wallet of a Sign-In-With-X message, if it owns the Space
        (else the payment it would take)."""
        wallet = await siwx_auth.sign_in(self.ctx, sign_in_with_x)
        if isinstance(wallet, Refused):
            return refusal(wallet.code, wallet.message)
        t = await purchases.transcript_for_wallet(self.ctx, sid, wallet, fmt)
        if isinstance(t, Refused) and t.code == "not_owned":
            return self.render("get_transcript", "transcription", siwx=True).required(t.message)
        if isinstance(t, Refused):
            return refusal(t.code, t.message)
        text = t.content.decode()
        return CallToolResult(content=[TextContent(type="text", text=text)], isError=False)


def build_server(ctx: Context) -> FastMCP:  # type: ignore[type-arg]
    """The MCP server: each tool's published signature and description, done by ``Tools``."""
    server = FastMCP("spacescribe", instructions=INSTRUCTIONS, log_level="WARNING")
    tools = Tools(ctx, server)
    prices = ctx.settings.prices
    free = ToolAnnotations(readOnlyHint=True, openWorldHint=False)

    @server.tool(description="Search transcribed Spaces by title and participants (free).",
                 annotations=free, structured_output=False)  # fmt: skip
    async def search_spaces(
        words: Annotated[str, Field(max_length=2000, description="words to look for")],
    ) -> CallToolResult:
        return await tools.search_spaces(words)

    @server.tool(description="A Space's processing status and free teaser (free).",
                 annotations=free, structured_output=False)  # fmt: skip
    async def space_status(space: Space) -> CallToolResult:
        return await tools.space_status(space)

    @server.tool(description=f"Buy a Space's transcript for {prices.transcription} USDC (x402).",
                 structured_output=False)  # fmt: skip
    async def buy_transcript(space: Space, mcp_ctx: McpContext) -> CallToolResult:  # type: ignore[type-arg]
        return await tools.buy_transcript(space, mcp_ctx)

    @server.tool(description=f"Unlock chat on a Space you bought, {prices.chat_unlock} USDC "
                 "(x402).", structured_output=False)  # fmt: skip
    async def unlock_chat(space: Space, mcp_ctx: McpContext) -> CallToolResult:  # type: ignore[type-arg]
        return await tools.unlock_chat(space, mcp_ctx)

    @server.tool(description=f"Ask a question over Spaces with chat unlocked: {prices.chat_base} "
                 f"+ {prices.chat_per_space} USDC per Space (x402). The answer cites its "
                 "sources.", structured_output=False)  # fmt: skip
    async def ask_spaces(
        question: Annotated[str, Field(min_length=1, max_length=20_000)],
        spaces: Annotated[list[Space], Field(min_length=1, max_length=50)],
        mcp_ctx: McpContext,  # type: ignore[type-arg]
    ) -> CallToolResult:
        return await tools.ask_spaces(question, spaces, mcp_ctx)

    @server.tool(description="The transcript (md, json, srt or vtt) for a wallet that bought "
                 "it: pass sign_in_with_x (the x402 Sign-In-With-X payload, base64, as the "
                 "SIGN-IN-WITH-X header), or pay as buy_transcript.",
                 structured_output=False)  # fmt: skip
    async def get_transcript(
        space: Space,
        mcp_ctx: McpContext,  # type: ignore[type-arg]
        format: Annotated[str, Field(max_length=10)] = "md",  # noqa: A002
        sign_in_with_x: Annotated[str | None, Field(max_length=siwx_auth.MAX_HEADER)] = None,
    ) -> CallToolResult:
        return await tools.get_transcript(space, mcp_ctx, format, sign_in_with_x)

    tools.declare("buy_transcript", "transcription", "Buy an X Space's transcript")
    tools.declare("unlock_chat", "chat_unlock", "Unlock chat over a bought Space")
    tools.declare("ask_spaces", "chat_query", "Ask a question over X Spaces, with sources")
    tools.declare("get_transcript", "transcription", "Read or buy an X Space's transcript")
    return server
