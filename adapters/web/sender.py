"""The outbox sender of the storefront's buyers (accounts of platform ``web``).

A web buyer has no inbox we can push to: what a message would tell them (paid, transcript
ready, refunded) is on the Space's page when they look. So delivering is marking the row
sent — except an owed chat answer (paid, credited before the answer was made), which is
produced now, like the bots' senders produce it, so the page can show it.
"""

from __future__ import annotations

from core.context import Context
from core.outbox_contract import Delivery, OutboundMessage
from core.results import Refused
from core.service import chat as chat_service


class WebSender:
    platform = "web"

    def __init__(self, ctx: Context) -> None:
        self.ctx = ctx

    async def deliver(self, message: OutboundMessage) -> Delivery:
        if message.kind != "chat_answer":
            return Delivery("sent", detail="shown on the storefront")
        a = await chat_service.delivered_answer(self.ctx, message.payload, message.last_attempt)
        if isinstance(a, Refused):  # the model is down (retry) or it was refunded (final)
            final = a.code == chat_service.UNANSWERED
            return Delivery("failed" if final else "retry", detail=a.code)
        if a is None:
            return Delivery("failed", detail="unknown answer")
        return Delivery("sent", detail="shown on the storefront")
