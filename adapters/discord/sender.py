"""Outbox delivery to Discord members by direct message (the outbox's MessageSender).

- Rate limits: discord.py waits out a 429 itself up to the client's
  ``max_ratelimit_timeout``; a longer wait becomes the outbox's ``retry_after``.
- No duplicates after a crash: every message carries a nonce derived from its outbox row
  with ``enforce_nonce``, so when a row is delivered again after a crash (the outbox is
  at-least-once), Discord returns the message it already has instead of posting another.
- DMs closed (403, e.g. error 50007): the member is told in the channel the command came
  from, where ``/myspaces`` hands them the transcript, and a paid answer comes with a
  "Show my answer" button (:class:`~adapters.discord.commands.AnswerButton`) that shows it
  to them alone; the row is not retried.
"""

from __future__ import annotations

import aiohttp
import discord

from adapters.discord import texts
from adapters.discord.commands import AnswerButton
from adapters.discord.replies import Host
from core.logging import get_logger
from core.outbox_contract import Delivery, OutboundMessage
from core.results import Caller, Refused
from core.service import catalog, notices
from core.service import chat as chat_service

log = get_logger("spacescribe.discord")


class DiscordSender:
    platform = "discord"

    def __init__(self, bot: Host) -> None:
        self.bot = bot

    async def render(
        self, message: OutboundMessage
    ) -> tuple[list[texts.Out], texts.Out] | Delivery:
        """The DM's messages, and what the channel is told if the DM is refused."""
        ctx, p, member = self.bot.ctx, message.payload, message.recipient
        if message.kind == "transcript_ready" and p.get("space_id"):
            caller = Caller("discord", member)
            t = await catalog.transcript_for(ctx, caller, str(p["space_id"]))
            if isinstance(t, Refused):
                return Delivery("failed", detail=t.code)
            closed = texts.Out(content=texts.dm_closed(member, str(p["space_id"])))
            return [texts.transcript(t, "Your transcript is ready.")], closed
        if message.kind == "chat_answer":
            a = await chat_service.delivered_answer(ctx, p, message.last_attempt)
            if isinstance(a, Refused):  # an owed answer the model cannot give (yet)
                final = a.code == chat_service.UNANSWERED  # refunded instead
                return Delivery("failed" if final else "retry", detail=a.code)
            if a is None:
                return Delivery("failed", detail="unknown answer")
            closed = texts.Out(
                content=texts.answer_dm_closed(member), items=(AnswerButton(a.session_id),)
            )
            return [texts.answer(a)], closed
        text = notices.notice(message.kind, p, code=texts.code, escape=texts.esc)
        return [texts.Out(content=text)], texts.Out(content=texts.dm_closed(member, None))

    async def deliver(self, message: OutboundMessage) -> Delivery:
        if not message.recipient.isdigit():
            return Delivery("failed", detail="not a Discord user id")
        rendered = await self.render(message)
        if isinstance(rendered, Delivery):
            return rendered
        outs, closed = rendered
        try:
            dm = await self.bot.client.create_dm(discord.Object(int(message.recipient)))
            for n, out in enumerate(outs):
                await dm.send(**out.kwargs(), nonce=f"ob{message.id}.{n}")
        except discord.RateLimited as e:
            return Delivery("retry", retry_after=e.retry_after, detail="429")
        except discord.Forbidden as e:
            await self.tell_in_channel(message, closed)
            return Delivery("undeliverable", detail=f"{e.code}: {e.text}"[:200])
        except discord.NotFound as e:
            return Delivery("failed", detail=f"{e.code}: {e.text}"[:200])
        except (TimeoutError, discord.HTTPException, aiohttp.ClientError, OSError) as e:
            return Delivery("retry", detail=f"{type(e).__name__}: {e}"[:200])
        return Delivery("sent")

    async def tell_in_channel(self, message: OutboundMessage, closed: texts.Out) -> None:
        """The DM failed: mention the member where they asked, if that was a channel."""
        origin = message.origin_chat_id
        if not origin or not origin.isdigit():
            return
        member = discord.Object(int(message.recipient))
        try:
            await self.bot.client.get_partial_messageable(int(origin)).send(
                **closed.kwargs(),
                allowed_mentions=discord.AllowedMentions(users=[member]),
                nonce=f"fb{message.id}",
            )
        except discord.HTTPException as e:
            log.warning("discord fallback not delivered", channel=origin, error=str(e)[:200])
