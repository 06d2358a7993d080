"""The bot talks to ``discord.api_url`` (here the stand-in) through its own client only:
discord.py's process-wide REST base and gateway stay Discord's."""

from __future__ import annotations

import yarl
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord.bot import DiscordBot
from adapters.discord.endpoints import Endpoints
from core.context import Context
from tests.stand_ins.discord_api import DiscordAPI

DISCORD_API = "https://discord.com/api/v10"
DISCORD_GATEWAY = yarl.URL("wss://gateway.discord.gg/")


async def test_a_started_bot_leaves_discord_pys_endpoints_alone(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, bot = dc
    help_ = await api.reply(await api.interact("help"))  # REST, gateway, interaction answer
    assert "USDC" in help_.text and api.gateways
    assert Route.BASE == DISCORD_API and DiscordWebSocket.DEFAULT_GATEWAY == DISCORD_GATEWAY
    assert bot.client.endpoints.rest(f"{DISCORD_API}/users/@me") == f"{api.api_url}/users/@me"


def test_endpoints_rebase_discords_urls_and_nothing_else() -> None:
    ours = Endpoints("http://127.0.0.1:9/api/v10/")
    assert ours.rest(f"{DISCORD_API}/channels/1/messages") == (
        "http://127.0.0.1:9/api/v10/channels/1/messages"
    )
    assert ours.rest("https://cdn.discordapp.com/a.png") == "https://cdn.discordapp.com/a.png"
    asked = str(DISCORD_GATEWAY.with_query(v=10, encoding="json"))
    assert ours.websocket(asked) == asked  # no gateway known yet
    ours.gateway = yarl.URL("ws://127.0.0.1:9/gateway")
    assert ours.websocket(asked) == "ws://127.0.0.1:9/gateway?v=10&encoding=json"
    resume = "wss://gateway-us-east1-b.discord.gg/?v=10"  # named by Discord itself: kept
    assert ours.websocket(resume) == resume
    assert Endpoints("").rest(f"{DISCORD_API}/gateway/bot") == f"{DISCORD_API}/gateway/bot"
