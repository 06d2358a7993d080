from tests.stand_ins.discord_api import DiscordAPI
from adapters.discord.bot import DiscordBot

async def test_help(dc: tuple[DiscordAPI, DiscordBot]) -> None:
    api, bot = dc
    print(api.identifies)
    print([c["name"] for c in api.commands[None]])
    it = await api.interact("help")
    r = await api.reply(it)
    print(r)
    assert "0.20 USDC" in r.text
