"""A user-installable app, through discord.py against the stand-in: the commands are synced
for a server install and a user install (servers, the bot's DM, private channels), a member
uses them where the server never added the bot, and /revenue and /import stay the server's."""

from __future__ import annotations

import aiohttp
import pytest
from sqlalchemy import select

from adapters.discord.bot import DiscordBot, invite_links
from core.context import Context
from core.db import Invoice
from tests.discord.conftest import ADMIN, ANN, BOB, owned_space, running
from tests.snapshot import snapshot
from tests.stand_ins.discord_api import (
    APP_ID,
    BOT_DM,
    CHANNEL_ID,
    GUILD_ID,
    GUILD_INSTALL,
    IN_GUILD,
    PRIVATE_CHANNEL,
    USER_INSTALL,
    DiscordAPI,
    NotOffered,
)

SID = "1USERINSTALL1"
ADMIN_ONLY = ("revenue", "import")
PLACES = [("other guild", USER_INSTALL), ("dm", USER_INSTALL), ("private", USER_INSTALL)]


async def test_commands_synced_for_both_installs_admin_ones_for_servers_only(
    dc: tuple[DiscordAPI, DiscordBot],
) -> None:
    api, _ = dc
    synced = {c["name"]: c for c in api.commands[None]}
    for name, c in synced.items():
        if name in ADMIN_ONLY:
            assert c["integration_types"] == [GUILD_INSTALL], name
            assert c["contexts"] == [IN_GUILD], name
            assert c["default_member_permissions"] == "8", name
        else:
            assert c["integration_types"] == [GUILD_INSTALL, USER_INSTALL], name
            assert c["contexts"] == [IN_GUILD, BOT_DM, PRIVATE_CHANNEL], name
    assert len(synced) == 11


@pytest.mark.parametrize(("where", "install"), PLACES)
async def test_transcribe_anywhere_through_a_user_install(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot], where: str, install: int
) -> None:
    api, _ = dc
    it = await api.interact("transcribe", {"space": SID}, user_id=ANN, where=where, install=install)
    quote = await api.reply(it)
    assert quote.ephemeral and "Amount: **0.20 USDC**" in quote.text and SID in quote.text
    (button,) = quote.buttons
    assert button["url"].startswith(ctx.settings.web.public_url + "/pay/")
    async with ctx.db.read() as s:
        (inv,) = (await s.execute(select(Invoice))).scalars().all()
    # the bot is not in that server or private channel: nothing is to be posted there
    assert inv.origin_chat_id is None


async def test_the_servers_own_channel_is_kept_for_a_server_install(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    await api.reply(await api.interact("transcribe", {"space": SID}, user_id=ANN))
    async with ctx.db.read() as s:
        (inv,) = (await s.execute(select(Invoice))).scalars().all()
    assert inv.origin_chat_id == str(CHANNEL_ID)


async def test_owned_spaces_and_suggestions_in_a_private_channel(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    sid = await owned_space(ctx, 1, ANN, title="Weekly")
    user = {"where": "private", "install": USER_INSTALL}
    offered = await api.choices("myspaces", {"space": ""}, "space", user_id=ANN, **user)
    assert [c["value"] for c in offered] == [sid]
    assert await api.choices("myspaces", {"space": ""}, "space", user_id=BOB, **user) == []
    got = await api.reply(await api.interact("myspaces", {"space": sid}, user_id=ANN, **user))
    assert got.ephemeral and b"Welcome to the weekly space" in got.files[0]["content"]
    refused = await api.reply(await api.interact("myspaces", {"space": sid}, user_id=BOB, **user))
    assert "You have not bought" in refused.text and not refused.files


@pytest.mark.parametrize("name", ADMIN_ONLY)
async def test_admin_commands_are_the_servers_only(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot], name: str
) -> None:
    api, _ = dc
    before = await snapshot(ctx)
    for where, install in [*PLACES, ("dm", GUILD_INSTALL), ("guild", USER_INSTALL)]:
        with pytest.raises(NotOffered):
            await api.interact(name, {}, user_id=ADMIN, where=where, install=install)
    assert await snapshot(ctx) == before
    if name == "revenue":  # in the server, an admin by id (no role) sees it
        it = await api.interact("revenue", user_id=ADMIN)
        assert "Revenue (week)" in (await api.reply(it)).text


async def test_the_stand_in_validates_installs_and_contexts_as_discord(
    dc: tuple[DiscordAPI, DiscordBot],
) -> None:
    """Bad values are refused at sync; a command synced without them gets Discord's defaults:
    server install only, never in private channels."""
    api, _ = dc
    base = {"name": "ping", "description": "Ping", "type": 1}
    url = f"{api.api_url}/applications/{APP_ID}/commands"
    headers = {"Authorization": f"Bot {api.token}"}
    async with aiohttp.ClientSession(headers=headers) as http:
        for bad in (
            {"integration_types": [2]},
            {"integration_types": []},
            {"contexts": [0, 3]},
            {"contexts": [0, 0]},
            {"contexts": "0"},
        ):
            async with http.put(url, json=[{**base, **bad}]) as r:
                assert r.status == 400, bad
                assert (await r.json())["code"] == 50035
        async with http.put(url, json=[base]) as r:
            assert r.status == 200
    for where, install in PLACES:
        with pytest.raises(NotOffered):
            await api.interact("ping", where=where, install=install)


async def test_commands_synced_to_a_guild_exist_only_there(ctx: Context, endpoints: None) -> None:
    """Development's guild sync: Discord offers guild commands in that guild only."""
    async with running(ctx, guild_ids=[GUILD_ID]) as (api, _):
        it = await api.interact("status", {"space": SID})
        assert "has not been requested yet" in (await api.reply(it)).text
        for where, install in PLACES:
            with pytest.raises(NotOffered, match="server command"):
                await api.interact("status", {"space": SID}, where=where, install=install)


def test_invite_links_are_built_from_the_application_id() -> None:
    server, user = invite_links(APP_ID)
    assert server == (
        f"https://discord.com/oauth2/authorize?client_id={APP_ID}"
        "&scope=bot+applications.commands&permissions=51200&integration_type=0"
    )
    assert user == (
        f"https://discord.com/oauth2/authorize?client_id={APP_ID}"
        "&scope=applications.commands&integration_type=1"
    )
