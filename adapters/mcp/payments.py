"""x402's MCP transport (``x402.mcp``): what a paid tool answers, in MCP terms.

- unpaid → an error result whose ``structuredContent`` is the x402 ``PaymentRequired``
  (and the same JSON as text), as ``x402.mcp`` clients expect;
- the payment arrives in the call's ``_meta["x402/payment"]``;
- the settlement goes back in the result's ``_meta["x402/payment-response"]``.

The sale itself is ``core.service.x402_sale``'s, as for the HTTP API; this module only turns
its outcomes into ``CallToolResult`` values (stored as JSON for idempotent replays).
"""

from __future__ import annotations

import json
from typing import Any

from mcp.types import CallToolResult, TextContent
from x402.extensions.payment_identifier import (
    PAYMENT_IDENTIFIER,
    declare_payment_identifier_extension,
)
from x402.extensions.sign_in_with_x import SIGN_IN_WITH_X
from x402.mcp import MCP_PAYMENT_META_KEY, MCP_PAYMENT_RESPONSE_META_KEY
from x402.schemas import PaymentPayload, ResourceInfo, SettleResponse

from core.context import Context
from core.payments import siwx as siwx_auth
from core.payments.gateway import GatewayUnavailable, gateway_for
from core.payments.idempotency import StoredResponse
from core.results import Refused
from core.service.listing import SERVICE_NAME, SERVICE_TAGS
from core.service.x402_sale import Answer

MCP_PATH = "/mcp"
# MCP has no status; a refused call's StoredResponse is neither replayed nor stored
REFUSED = 400


def result_json(
    body: dict[str, Any], *, error: bool = False, meta: dict[str, Any] | None = None
) -> CallToolResult:
    """A tool result whose structured content is ``body`` (its JSON also as text)."""
    return CallToolResult(
        content=[TextContent(type="text", text=json.dumps(body))],
        structuredContent=body,
        isError=error,
        _meta=meta,
    )


def refusal(code: str, message: str) -> CallToolResult:
    return result_json({"error": code, "message": message}, error=True)


def stored(result: CallToolResult, status: int = 200) -> StoredResponse:
    dumped = result.model_dump(mode="json", by_alias=True, exclude_none=True)
    return StoredResponse(status, json.dumps(dumped).encode(), {})


def from_stored(s: StoredResponse) -> CallToolResult:
    return CallToolResult.model_validate(json.loads(s.body))


def payment_of(meta: dict[str, Any] | None) -> PaymentPayload | None | str:
    """The payload in ``_meta["x402/payment"]``; None if there is none; a reason if it
    cannot be read as an x402 v2 payload."""
    raw = (meta or {}).get(MCP_PAYMENT_META_KEY)
    if raw is None:
        return None
    try:
        data = json.loads(raw) if isinstance(raw, str) else raw
        p = PaymentPayload.model_validate(data)
    except Exception:
        return "invalid_payment"
    return p if p.x402_version == 2 else "invalid_payment"


class McpRender:
    """``core.service.x402_sale.Render`` for one paid tool."""

    def __init__(
        self,
        ctx: Context,
        tool: str,
        units: int,
        description: str,
        discovery: dict[str, Any],
        siwx: bool = False,
    ) -> None:
        self.ctx = ctx
        self.tool = tool
        self.units = units
        self.description = description
        self.discovery = discovery
        self.siwx = siwx

    def answer(
        self, outcome: Answer, body: dict[str, Any], settlement: SettleResponse | None = None
    ) -> StoredResponse:
        meta = None
        if settlement is not None:
            meta = {
                MCP_PAYMENT_RESPONSE_META_KEY: settlement.model_dump(
                    mode="json", by_alias=True, exclude_none=True
                )
            }
        return stored(result_json(body, meta=meta))  # MCP has no status: the outcome is the body

    def refuse(self, refusal: Refused, retry_after: int | None = None) -> StoredResponse:
        body: dict[str, Any] = {"error": refusal.code, "message": refusal.message}
        if retry_after is not None:
            body["retry_after"] = retry_after
        return stored(result_json(body, error=True), REFUSED)

    def payment_required(self, message: str | None = None) -> StoredResponse:
        return stored(self.required(message), 402)

    def required(self, message: str | None = None) -> CallToolResult:
        """The x402 PaymentRequired for this tool, as x402.mcp clients read it."""
        try:
            gw = gateway_for(self.ctx.settings.payments, self.ctx.secrets)
            reqs = gw.requirements(self.units)
        except GatewayUnavailable:
            return refusal("payments_unavailable", "Payments are not configured on this server.")
        except Exception:
            return refusal("rpc_unavailable", "The payment facilitator is unreachable; try later.")
        resource = ResourceInfo(
            url=f"mcp://tool/{self.tool}",
            description=self.description,
            mime_type="application/json",
            service_name=SERVICE_NAME,
            tags=SERVICE_TAGS,
        )
        pr = gw.payment_required(reqs, resource, message or "Payment required")
        ext: dict[str, Any] = {
            PAYMENT_IDENTIFIER: declare_payment_identifier_extension(),
            **self.discovery,
        }
        if self.siwx:
            ext[SIGN_IN_WITH_X] = siwx_auth.declaration(self.ctx, f"{MCP_PATH}/{self.tool}")
        pr.extensions = ext
        return result_json(pr.model_dump(mode="json", by_alias=True, exclude_none=True), error=True)
