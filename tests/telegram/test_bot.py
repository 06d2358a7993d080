"""The Telegram adapter through the real python-telegram-bot against a Bot API stand-in."""

from __future__ import annotations

from adapters.telegram.bot import TelegramBot
from core import outbox
from core.context import Context
from core.db import Space, TranscriptionPayment, utcnow
from core.outbox_contract import OutboundMessage
from core.results import Caller
from tests.snapshot import snapshot
from tests.stand_ins.telegram_api import BotAPI

SID = "1TELEGRAM0001"


async def test_commands_registered_and_help(tg: tuple[BotAPI, TelegramBot]) -> None:
    api, _ = tg
    cmds = api.sent("setMyCommands")[0]["commands"]
    assert {c["command"] for c in cmds} >= {"transcribe", "unlock", "chat", "myspaces", "help"}
    api.command("/help")
    (msg,) = await api.wait_for("sendMessage")
    assert "0.20 USDC" in msg["text"] and msg["parse_mode"] == "HTML"


async def test_bad_input_gets_specific_replies_and_changes_nothing(
    ctx: Context, tg: tuple[BotAPI, TelegramBot]
) -> None:
    api, _ = tg
    before = await snapshot(ctx)
    api.command("/status")
    api.command("/transcribe https://evil.com/i/spaces/1RDxlAoOeQRKL")
    api.command("/status 1ZZZZZZZZZZZZ")
    api.command("/unlock <script>")
    api.command(f"/chat {'why ' * 400}{SID}")
    api.command("/transcribe@spacescribe_bot https://x.com/i/spaces/not-an-id")
    api.command("/search@spacescribe_bot")
    msgs = [m["text"] for m in await api.wait_for("sendMessage", 7)]
    assert msgs[0].startswith("Usage: /status")
    assert "Only X (Twitter) Space links" in msgs[1]
    assert "has not been requested yet" in msgs[2]
    assert "&lt;script&gt;" in msgs[3] or "Space" in msgs[3]
    assert "limit is 1000" in msgs[4]
    assert "Space" in msgs[5] and "not-an-id" not in msgs[5]  # addressed /cmd@bot works too
    assert msgs[6].startswith("Usage: /search")
    assert "<script>" not in " ".join(msgs)
    assert await snapshot(ctx) == before


def test_long_texts_are_split_within_the_limit() -> None:
    from adapters.telegram import texts

    text = "\n".join(f"line {i} " + "x" * 90 for i in range(200))  # ~19,000 characters
    parts = texts.chunks(text)
    assert len(parts) >= 5 and all(len(p) <= texts.MAX_MESSAGE for p in parts)
    assert "\n".join(parts) == text  # nothing lost


async def test_transcribe_in_a_group_quotes_privately(
    ctx: Context, tg: tuple[BotAPI, TelegramBot]
) -> None:
    api, _ = tg
    api.command(
        f"/transcribe https://x.com/i/spaces/{SID}", user_id=7, chat_id=-100, chat_type="group"
    )
    msgs = await api.wait_for("sendMessage", 2)
    private = next(m for m in msgs if str(m["chat_id"]) == "7")
    group = next(m for m in msgs if str(m["chat_id"]) == "-100")
    assert "0.20 USDC" in private["text"] and SID in private["text"]
    button = private["reply_markup"]["inline_keyboard"][0][0]
    assert button["url"].startswith(ctx.settings.web.public_url + "/pay/")
    assert "privately" in group["text"]


async def _owned_completed(ctx: Context, user: str) -> None:
    from core import accounts

    async with ctx.db.session() as s:
        sp = Space(
            space_id=SID,
            space_url=f"https://x.com/i/spaces/{SID}",
            title="Done",
            status="completed",
            first_requested_at=utcnow(),
        )
        s.add(sp)
        await s.flush()
        u = await accounts.get_or_create_user(s, "0x" + "56" * 20)
        a = await accounts.get_or_create_account(s, Caller("telegram", user))
        await accounts.link_account(s, a.id, u.id)
        s.add(
            TranscriptionPayment(
                user_id=u.id, space_id=sp.id, amount_usdc="0.2", payment_verified=True
            )
        )
    path = ctx.spaces_dir / SID / "transcript.md"
    path.parent.mkdir(parents=True)
    path.write_text("# Done\n\n[00:00:01] Speaker: hello\n")


async def test_delivery_blocked_fallback_and_429(
    ctx: Context, tg: tuple[BotAPI, TelegramBot]
) -> None:
    api, bot = tg
    await _owned_completed(ctx, "7")
    msg = OutboundMessage(1, "transcript_ready", "telegram", "7", "-100", {"space_id": SID}, 1)
    api.rate_limited = 1
    d = await bot.sender.deliver(msg)
    assert d.status == "retry" and d.retry_after == 3
    d = await bot.sender.deliver(msg)
    assert d.status == "sent"
    doc = (await api.wait_for("sendDocument"))[0]
    assert doc["document"]["filename"] == "transcript.md" and "hello" in doc["document"]["content"]
    api.blocked.add("7")
    d = await bot.sender.deliver(msg)
    assert d.status == "undeliverable"
    fallback = [m for m in api.sent("sendMessage") if str(m["chat_id"]) == "-100"][-1]
    assert f"start=resend_{SID}" in fallback["text"]
    # the deep link re-sends it once the member has started the bot
    api.blocked.clear()
    api.command(f"/start resend_{SID}", user_id=7)
    # sent once, refused once (blocked), re-sent by the deep link
    assert len(await api.wait_for("sendDocument", 3)) == 3


async def test_outbox_drain_delivers_through_the_bot(
    ctx: Context, tg: tuple[BotAPI, TelegramBot]
) -> None:
    api, _ = tg
    await _owned_completed(ctx, "7")
    async with ctx.db.session() as s:
        await outbox.add_message(
            s,
            kind="transcript_ready",
            platform="telegram",
            recipient="7",
            payload={"space_id": SID},
            dedupe_key="t1",
        )
    assert await outbox.drain_once(ctx, "w") == 1
    assert await outbox.drain_once(ctx, "w") == 0
    assert len(api.sent("sendDocument")) == 1


async def test_revenue_admin_only_with_chart(ctx: Context, tg: tuple[BotAPI, TelegramBot]) -> None:
    api, _ = tg
    api.command("/revenue", user_id=7)
    (refusal,) = await api.wait_for("sendMessage")
    assert "Only the bot" in refusal["text"] and "admins can see revenue" in refusal["text"]
    assert not api.sent("sendPhoto")
    api.command("/revenue all", user_id=1)
    msgs = await api.wait_for("sendMessage", 2)
    assert "Total: 0.00 USDC" in msgs[1]["text"]
    photo = (await api.wait_for("sendPhoto"))[0]
    assert photo["photo"]["size"] > 1000


async def test_wallet_chat_and_search(ctx: Context, tg: tuple[BotAPI, TelegramBot]) -> None:
    api, _ = tg
    api.command("/wallet")
    api.command("/chat what did they say")
    api.command(f"/chat what did they say {SID} {SID}")
    api.command("/search")
    msgs = await api.wait_for("sendMessage", 4)
    assert "Credit: <b>0.00 USDC</b>" in msgs[0]["text"]
    assert msgs[0]["reply_markup"]["inline_keyboard"][0][0]["url"].startswith(
        ctx.settings.web.public_url + "/link/"
    )
    assert msgs[1]["text"].startswith("Usage: /chat")
    assert msgs[2]["text"].startswith("⚠️")  # duplicated / unknown Space: refused by core
    assert msgs[3]["text"].startswith("Usage: /search")
