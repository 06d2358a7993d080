"""Outbox delivery to Telegram members by private message (the outbox's MessageSender).

- Rate limits: a 429 (``RetryAfter``) becomes the outbox's ``retry_after``.
- Private chat closed (403, the member blocked the bot or never started it): the member is
  told in the chat the command came from, with a deep link back to the bot; the row is not
  retried.
- A Stars refund (``stars_refund``) is refunded through Telegram, recorded, then told.
"""

from __future__ import annotations

from telegram.constants import ParseMode
from telegram.error import BadRequest, Forbidden, RetryAfter, TelegramError

from adapters.telegram import texts
from adapters.telegram.replies import Host, send_transcript
from core.outbox_contract import Delivery, OutboundMessage
from core.payments import stars
from core.results import Caller, Refused
from core.service import catalog, notices
from core.service import chat as chat_service


class TelegramSender:
    """Delivers outbox messages to Telegram users (the outbox's MessageSender)."""

    platform = "telegram"

    def __init__(self, bot: Host) -> None:
        self.bot = bot

    async def deliver(self, message: OutboundMessage) -> Delivery:
        b = self.bot.app.bot
        sid = message.payload.get("space_id")
        fallback = texts.blocked_fallback(b.username, sid)  # said where the member asked
        try:
            if message.kind == "chat_answer":
                a = await chat_service.delivered_answer(
                    self.bot.ctx, message.payload, message.last_attempt
                )
                if isinstance(a, Refused):  # an owed answer the model cannot give (yet)
                    final = a.code == chat_service.UNANSWERED  # refunded instead
                    return Delivery("failed" if final else "retry", detail=a.code)
                if a is None:
                    return Delivery("failed", detail="unknown answer")
                fallback = texts.answer_blocked_fallback(b.username, a.session_id)
                for part in texts.chunks(texts.answer(a)):
                    await b.send_message(
                        message.recipient,
                        part,
                        parse_mode=ParseMode.HTML,
                        disable_web_page_preview=True,
                    )
            elif message.kind == "stars_refund":
                await self._refund_stars(message)
            elif message.kind == "transcript_ready" and sid:
                caller = Caller("telegram", message.recipient)
                t = await catalog.transcript_for(self.bot.ctx, caller, str(sid))
                if isinstance(t, Refused):
                    return Delivery("failed", detail=t.code)
                await send_transcript(b, message.recipient, t)
            else:
                await b.send_message(message.recipient, _notice(message), parse_mode=ParseMode.HTML)
            return Delivery("sent")
        except RetryAfter as e:
            ra = e.retry_after
            seconds = ra.total_seconds() if hasattr(ra, "total_seconds") else float(ra)
            return Delivery("retry", retry_after=seconds, detail="429")
        except Forbidden as e:
            if message.origin_chat_id and message.origin_chat_id != message.recipient:
                try:
                    await b.send_message(
                        message.origin_chat_id, fallback, parse_mode=ParseMode.HTML
                    )
                except TelegramError:
                    pass
            return Delivery("undeliverable", detail=str(e)[:200])
        except TelegramError as e:
            return Delivery("retry", detail=f"{type(e).__name__}: {e}"[:200])

    async def _refund_stars(self, message: OutboundMessage) -> None:
        """refundStarPayment, recorded; a charge Telegram says is refunded already counts
        as done (a redelivery after a crash never refunds twice). Then the member is told."""
        charge = str(message.payload["charge_id"])
        try:
            await self.bot.app.bot.refund_star_payment(
                user_id=int(message.recipient), telegram_payment_charge_id=charge
            )
        except BadRequest as e:
            if "ALREADY_REFUNDED" not in str(e).upper():
                raise
        await stars.mark_refunded(self.bot.ctx, charge)
        await self.bot.app.bot.send_message(
            message.recipient, _notice(message), parse_mode=ParseMode.HTML
        )


def _notice(message: OutboundMessage) -> str:
    return notices.notice(
        message.kind,
        message.payload,
        code=lambda s: f"<code>{texts.escape(s)}</code>",
        escape=texts.escape,
    )
