"""Outbox delivery to Discord through discord.py: DMs with the transcript, DMs closed
(50007) told in the channel, 429s honoured, and no duplicate after a crash."""

from __future__ import annotations

from datetime import timedelta

from sqlalchemy import select, update

from adapters.discord.bot import DiscordBot
from core import outbox
from core.context import Context
from core.db import Outbox, utcnow
from core.outbox_contract import OutboundMessage
from tests.discord.conftest import ANN, owned_space
from tests.stand_ins.discord_api import CHANNEL_ID, DiscordAPI


async def _queue(ctx: Context, sid: str, user: int = ANN, key: str = "t1") -> None:
    async with ctx.db.session() as s:
        await outbox.add_message(
            s,
            kind="transcript_ready",
            platform="discord",
            recipient=str(user),
            payload={"space_id": sid},
            dedupe_key=key,
            origin_chat_id=str(CHANNEL_ID),
        )


async def _rows(ctx: Context) -> list[tuple[str, str | None]]:
    async with ctx.db.session() as s:
        return [tuple(r) for r in await s.execute(select(Outbox.status, Outbox.last_error))]  # type: ignore[misc]


async def test_dms_closed_told_in_the_channel_and_kept_in_myspaces(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    sid = await owned_space(ctx, 1, ANN, title="Weekly weather")
    api.dms_closed.add(ANN)
    await _queue(ctx, sid)
    assert await outbox.drain_once(ctx, "w") == 1
    assert await _rows(ctx) == [("fallback", "50007: Cannot send messages to this user")]
    assert api.dms(ANN) == []
    (told,) = api.channel(CHANNEL_ID)
    assert told["content"].startswith(f"<@{ANN}>") and f"/myspaces space:{sid}" in told["content"]
    # the mention pings the member, and only them
    (sent,) = [c for c in api.sent("POST", rf"/channels/{CHANNEL_ID}/messages")]
    assert sent.body["allowed_mentions"] == {"parse": [], "users": [ANN]}
    assert await outbox.drain_once(ctx, "w") == 0  # not retried
    # /myspaces hands the file over right there, only to them
    again = await api.reply(await api.interact("myspaces", {"space": sid}, user_id=ANN))
    assert again.ephemeral and again.files[0]["filename"] == "transcript.md"
    assert b"Welcome to the weekly space." in again.files[0]["content"]
    assert "Weekly weather" in again.text


async def test_dm_with_transcript_429_honoured_and_no_duplicate_after_a_crash(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    sid = await owned_space(ctx, 1, ANN, title="Weekly weather")
    api.rate_limited, api.retry_after = 1, 0.3
    await _queue(ctx, sid)
    assert await outbox.drain_once(ctx, "w") == 1
    (dm,) = api.dms(ANN)
    tries = api.sent("POST", rf"/channels/{dm['channel_id']}/messages")
    assert [t.status for t in tries] == [429, 200]
    assert tries[1].at - tries[0].at >= 0.3  # discord.py waited out retry_after
    assert dm["_files"][0]["filename"] == "transcript.md"
    (embed,) = dm["embeds"]
    assert embed["title"] == "Weekly weather" and embed["url"].endswith(sid)
    assert {f["name"] for f in embed["fields"]} == {"Speakers"}
    assert "alice, bob" in embed["fields"][0]["value"]
    assert await _rows(ctx) == [("sent", None)]
    # crash: the process died after Discord took the message, before the row said "sent";
    # its lease ends and the row is delivered again, with the same nonce
    async with ctx.db.session() as s:
        await s.execute(
            update(Outbox).values(status="sending", available_at=utcnow() - timedelta(seconds=1))
        )
    assert await outbox.drain_once(ctx, "w2") == 1
    assert len(api.sent("POST", rf"/channels/{dm['channel_id']}/messages")) == 3
    assert len(api.dms(ANN)) == 1  # Discord kept one message: enforce_nonce
    assert await _rows(ctx) == [("sent", None)]


async def test_long_rate_limit_is_left_to_the_outbox(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, bot = dc
    sid = await owned_space(ctx, 1, ANN)
    api.rate_limited, api.retry_after = 1, 45.0
    msg = OutboundMessage(5, "transcript_ready", "discord", str(ANN), None, {"space_id": sid}, 1)
    d = await bot.sender.deliver(msg)
    assert (d.status, d.retry_after) == ("retry", 45.0)
    assert (await bot.sender.deliver(msg)).status == "sent"
    bad = OutboundMessage(6, "payment_confirmed", "discord", "tg-user", None, {}, 1)
    assert (await bot.sender.deliver(bad)).status == "failed"


async def test_notices_and_unowned_transcripts(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, bot = dc
    paid = OutboundMessage(
        7,
        "payment_confirmed",
        "discord",
        str(ANN),
        None,
        {"kind": "transcription", "space_ids": ["1Space000001X"], "amount": "0.2"},
        1,
    )
    assert (await bot.sender.deliver(paid)).status == "sent"
    (dm,) = api.dms(ANN)
    assert dm["content"].startswith("✅ Payment received: 0.20 USDC for `1Space000001X`")
    foreign = OutboundMessage(
        8, "transcript_ready", "discord", str(ANN), None, {"space_id": "1Space000002X"}, 1
    )
    d = await bot.sender.deliver(foreign)
    assert (d.status, d.detail) == ("failed", "not_owned") and len(api.dms(ANN)) == 1
