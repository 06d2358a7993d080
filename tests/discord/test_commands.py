"""Slash commands through the real discord.py client, over the stand-in's gateway and REST."""

from __future__ import annotations

import pytest

from adapters.discord import commands
from adapters.discord.bot import DiscordBot
from core.context import Context
from core.errors import ConfigError
from core.service import catalog
from tests.discord.conftest import ADMIN, ANN, BOB, owned_space, running
from tests.snapshot import snapshot
from tests.stand_ins.discord_api import ADMIN_ROLE_ID, GUILD_ID, DiscordAPI, discord_api

PRIVILEGED_INTENTS = (1 << 1) | (1 << 8) | (1 << 15)  # members, presences, message content


async def test_commands_synced_with_descriptions_over_a_compressed_gateway(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    (identify,) = api.identifies
    assert identify["intents"] & PRIVILEGED_INTENTS == 0 and identify["intents"] & 1  # guilds
    assert api.gateways[0].deflate is not None  # zlib-stream, as discord.py asks for
    assert api.gateways[0].heartbeats >= 1  # the first heartbeat follows HELLO at once
    assert ctx.wiring.bots()["discord"] is True
    synced = {c["name"]: c for c in api.commands[None]}  # global: no guild ids configured
    assert set(synced) == {
        "transcribe", "unlock", "chat", "myspaces", "status",
        "popular", "search", "wallet", "revenue", "import", "help",
    }  # fmt: skip
    for c in synced.values():
        assert all(o["description"] for o in c.get("options", [])), c["name"]
    chat = [o["name"] for o in synced["chat"]["options"]]
    n = ctx.settings.chat.max_spaces
    assert chat == ["question"] + [f"space{i}" for i in range(1, n + 1)]
    assert all(o.get("autocomplete") for o in synced["chat"]["options"][1:])
    for name in ("transcribe", "unlock", "myspaces", "status"):
        assert synced[name]["options"][0]["autocomplete"] is True
    revenue = synced["revenue"]
    assert revenue["default_member_permissions"] == "8"  # hidden from non-administrators
    assert [c["value"] for c in revenue["options"][0]["choices"]] == ["day", "week", "month", "all"]
    imp = synced["import"]
    assert imp["default_member_permissions"] == "8"  # hidden from non-administrators
    assert [(o["name"], o["type"], o.get("required", False)) for o in imp["options"]] == [
        ("space", 3, True),
        ("attachment", 11, True),
        ("title", 3, False),
    ]
    help_ = await api.reply(await api.interact("help"))
    assert help_.ephemeral and "0.20 USDC" in help_.text and "0.90 USDC" in help_.text


async def test_guild_sync_for_development(ctx: Context, endpoints: None) -> None:
    async with running(ctx, guild_ids=[GUILD_ID]) as (api, _):
        assert None not in api.commands and len(api.commands[GUILD_ID]) == 11
        it = await api.interact("status", {"space": "1ZZZZZZZZZZZZ"})
        assert "has not been requested yet" in (await api.reply(it)).text


async def test_malformed_inputs_get_specific_replies_and_change_nothing(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    await owned_space(ctx, 1, ANN)
    before = await snapshot(ctx)
    cases = [
        ("transcribe", {"space": "https://evil.com/i/spaces/1RDxlAoOeQRKL"}, "Only X (Twitter)"),
        ("status", {"space": "1ZZZZZZZZZZZZ"}, "has not been requested yet"),
        ("unlock", {"space": "<script>**x**"}, "Only X (Twitter)"),
        ("chat", {"question": " ", "space1": "1Space000001X"}, "Ask a question"),
        ("chat", {"question": "why? " * 400, "space1": "1Space000001X"}, "the limit is"),
        ("chat", {"question": "why?", "space1": "1Space000001X", "space2": "1Space000001X"},
         "named twice"),
        ("chat", {"question": "why?", "space1": "1Space000001X"}, "Use /unlock"),
        ("search", {"words": "   "}, "Search for some words"),
        ("myspaces", {"space": "1Space000009X"}, "You have not bought"),
        ("revenue", {"period": "year"}, "Period must be one of"),
    ]  # fmt: skip
    for command, options, expected in cases:
        user = ADMIN if command == "revenue" else ANN
        reply = await api.reply(await api.interact(command, options, user_id=user))
        assert expected in reply.text, (command, reply.text)
        assert reply.text.startswith("⚠️") and reply.ephemeral == (command != "status")
        assert "<script>" not in reply.text
    assert await snapshot(ctx) == before


async def test_autocomplete_offers_only_the_callers_spaces(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    a = await owned_space(ctx, 1, ANN, title="Bitcoin weekly")
    b = await owned_space(ctx, 2, ANN, title="Rust and *friends*")
    c = await owned_space(ctx, 3, BOB, title="Bitcoin daily")
    mine = await api.choices("unlock", {"space": ""}, "space", user_id=ANN)
    assert sorted(ch["value"] for ch in mine) == sorted([a, b])
    assert all(ch["name"].endswith(ch["value"]) and len(ch["name"]) <= 100 for ch in mine)
    typed = await api.choices("transcribe", {"space": "bitc"}, "space", user_id=ANN)
    assert [ch["value"] for ch in typed] == [a]  # Bob's "Bitcoin daily" is not offered
    by_id = await api.choices("myspaces", {"space": b[-5:].lower()}, "space", user_id=ANN)
    assert [ch["value"] for ch in by_id] == [b]
    second = await api.choices(
        "chat", {"question": "q", "space1": a, "space2": ""}, "space2", user_id=ANN
    )
    assert sorted(ch["value"] for ch in second) == sorted([a, b])
    assert await api.choices("status", {"space": ""}, "space", user_id=BOB) == [
        {"name": f"Bitcoin daily · {c}", "value": c}
    ]
    assert await api.choices("status", {"space": "%"}, "space", user_id=BOB) == []
    assert await api.choices("unlock", {"space": ""}, "space", user_id=99) == []


async def test_revenue_only_for_admins_with_exact_totals_and_chart(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    refusal = await api.reply(await api.interact("revenue", {"period": "all"}, user_id=ANN))
    assert refusal.ephemeral and "Only the bot's admins can see revenue" in refusal.text
    assert not refusal.files
    await owned_space(ctx, 1, ANN, unlocked=True)
    for i, user in ((2, ANN), (3, BOB), (4, ADMIN)):
        await owned_space(ctx, i, user)
    by_role = await api.reply(
        await api.interact("revenue", {"period": "all"}, user_id=42, roles=[ADMIN_ROLE_ID])
    )
    assert by_role.ephemeral and "Total: **1.30 USDC**" in by_role.text
    assert "transcriptions: 0.80 USDC (4)" in by_role.text
    assert "chat unlocks: 0.50 USDC (1)" in by_role.text
    (chart,) = by_role.files
    assert chart["filename"] == "revenue.png" and chart["content"][:8] == b"\x89PNG\r\n\x1a\n"
    assert by_role.data["embeds"][0]["image"]["url"] == "attachment://revenue.png"
    by_id = await api.reply(await api.interact("revenue", user_id=ADMIN))  # an id, no role
    assert "Revenue (week)" in by_id.text


async def test_wallet_status_popular_and_search(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    sid = await owned_space(ctx, 1, ANN, title="Weekly weather")
    await owned_space(ctx, 2, ANN, title="**Bold** claims @everyone")
    wallet = await api.reply(await api.interact("wallet", user_id=ANN))
    assert wallet.ephemeral and "Credit: **0.00 USDC**" in wallet.text
    (button,) = wallet.buttons
    assert button["style"] == 5 and button["url"].startswith(ctx.settings.web.public_url + "/link/")
    status = await api.reply(await api.interact("status", {"space": sid}))
    assert not status.ephemeral and "Status: **completed**" in status.text
    popular = await api.reply(await api.interact("popular"))
    assert "Weekly weather" in popular.text
    found = await api.reply(await api.interact("search", {"words": "launch"}, user_id=ANN))
    assert found.ephemeral and "ninth of May" in found.text  # a passage of an owned Space
    mine = await api.reply(await api.interact("myspaces", user_id=ANN))
    assert "Weekly weather" in mine.text and "completed" in mine.text
    assert "\\*\\*Bold\\*\\* claims" in mine.text  # titles are escaped, never rendered
    assert mine.data["allowed_mentions"] == {"parse": []}  # and nobody is pinged


async def test_a_failing_command_tells_the_member_nothing_was_charged(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot], monkeypatch: pytest.MonkeyPatch
) -> None:
    api, _ = dc

    async def broken(_ctx: Context) -> None:
        raise RuntimeError("the database is on fire")

    monkeypatch.setattr(catalog, "popular", broken)  # an edge case: a fault inside core
    it = await api.interact("popular")
    assert "nothing was charged" in (await api.reply(it)).text
    del api.interactions[it.id]  # expected: the fixture checks that no other command failed


async def test_a_refused_token_is_explained(ctx: Context, endpoints: None) -> None:
    async with discord_api() as api:
        ctx.settings.discord.api_url = api.api_url
        bot = DiscordBot(ctx, "not-the-token")
        with pytest.raises(ConfigError, match="DISCORD_TOKEN was refused by Discord"):
            await bot.start()
        await bot.stop()
    assert [c.status for c in api.calls] == [401]


def test_chat_takes_as_many_spaces_as_configured_within_discords_limit() -> None:
    assert [p.name for p in commands.chat_command(3).parameters] == [
        "question", "space1", "space2", "space3",
    ]  # fmt: skip
    wide = commands.chat_command(50).parameters
    assert len(wide) == 25 and wide[-1].name == "space24" and not wide[-1].required
