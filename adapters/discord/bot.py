"""The Discord bot: a discord.py client with an application command tree.

Only the non-privileged ``guilds`` intent is asked for: slash commands need no message
content, and the guild cache gives the roles that may use /revenue. Commands are synced
globally, or to ``discord.guild_ids`` at once (development). Outbound messages are
delivered by :class:`~adapters.discord.sender.DiscordSender` from the outbox.
"""

from __future__ import annotations

import asyncio
import contextlib
from typing import Any

import discord
import yarl
from discord import app_commands
from discord.gateway import DiscordWebSocket
from discord.http import Route

from adapters.discord import commands, texts
from adapters.discord.sender import DiscordSender
from core.context import Context
from core.errors import ConfigError
from core.logging import get_logger
from core.results import Caller

log = get_logger("spacescribe.discord")

CONNECT_WAIT_SECONDS = 30.0  # start() waits this long for the gateway, then goes on
RATE_LIMIT_WAIT_SECONDS = 30.0  # longer 429 waits are left to the outbox's retry


def intents() -> discord.Intents:
    wanted = discord.Intents.none()
    wanted.guilds = True  # roles and channels of the servers the bot is in; not privileged
    return wanted


class Tree(app_commands.CommandTree["SpacescribeClient"]):
    async def on_error(
        self, interaction: discord.Interaction[Any], error: app_commands.AppCommandError
    ) -> None:
        """A command failed: log it with context, tell the member nothing was charged."""
        name = interaction.command.name if interaction.command else None
        log.error("discord command failed", command=name, error=repr(error)[:300])
        if interaction.type is not discord.InteractionType.application_command:
            return
        with contextlib.suppress(discord.HTTPException):
            await commands.send(interaction, texts.failure())


class SpacescribeClient(discord.Client):
    def __init__(self, bot: DiscordBot) -> None:
        # the bot never joins voice channels: no warning about voice libraries
        discord.VoiceClient.warn_nacl = discord.VoiceClient.warn_dave = False
        super().__init__(
            intents=intents(),
            allowed_mentions=discord.AllowedMentions.none(),
            max_ratelimit_timeout=RATE_LIMIT_WAIT_SECONDS,
        )
        self.bot = bot
        self.tree = Tree(
            self, allowed_installs=commands.INSTALLS, allowed_contexts=commands.CONTEXTS
        )
        self.gateway_up = asyncio.Event()

    async def setup_hook(self) -> None:
        await self.bot.sync_commands()

    async def on_connect(self) -> None:
        self.bot.ctx.wiring.set_connected("discord", True)
        self.gateway_up.set()

    async def on_resumed(self) -> None:
        self.bot.ctx.wiring.set_connected("discord", True)

    async def on_disconnect(self) -> None:
        self.bot.ctx.wiring.set_connected("discord", False)


class DiscordBot:
    name = "discord"

    def __init__(self, ctx: Context, token: str) -> None:
        self.ctx = ctx
        self._token = token
        self.client = SpacescribeClient(self)
        max_spaces = ctx.settings.chat.max_spaces
        if max_spaces > commands.OPTIONS_MAX - 1:
            log.warning(
                "discord /chat names at most 24 Spaces (Discord allows 25 options)",
                configured=max_spaces,
            )
        for cmd in commands.build(max_spaces):
            self.client.tree.add_command(cmd)
        self.client.add_dynamic_items(commands.AnswerButton)  # presses of earlier messages too
        self.sender = DiscordSender(self)
        self._task: asyncio.Task[None] | None = None

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        api_url = self.ctx.settings.discord.api_url.rstrip("/")
        if api_url:  # discord.py keeps its endpoints on the classes: one bot per process
            Route.BASE = api_url
        try:
            await self.client.login(self._token)  # REST: who we are; setup_hook syncs commands
        except discord.LoginFailure as exc:
            await self.client.close()
            raise ConfigError(
                "DISCORD_TOKEN was refused by Discord (401): copy the token again from "
                "Bot → Reset Token in the Developer Portal"
            ) from exc
        if api_url:
            _shards, gateway, _limits = await self.client.http.get_bot_gateway()
            DiscordWebSocket.DEFAULT_GATEWAY = yarl.URL(gateway)
        self._task = asyncio.create_task(self.client.connect(), name="discord-gateway")
        self._task.add_done_callback(_gateway_ended)
        waiter = asyncio.create_task(self.client.gateway_up.wait())
        await asyncio.wait(
            {waiter, self._task}, timeout=CONNECT_WAIT_SECONDS, return_when="FIRST_COMPLETED"
        )
        waiter.cancel()
        if self._task.done():
            self._task.result()  # the gateway refused us (bad token, intents): say why
        if not self.client.gateway_up.is_set():
            log.warning("discord gateway not connected yet; retrying in the background")
        self.ctx.wiring.add_sender(self.sender)
        server, user = invite_links(self.client.application_id or 0)
        log.info(
            "discord bot started",
            user=str(self.client.user),
            commands=len(self.client.tree.get_commands()),
            server_install=server,
            user_install=user,
        )

    async def stop(self) -> None:
        self.ctx.wiring.remove_sender("discord")
        await self.client.close()
        if self._task is not None:
            # after an outage the gateway task may be sleeping out a reconnect backoff
            # (up to many minutes): closed, it has nothing left to do
            self._task.cancel()
            with contextlib.suppress(asyncio.CancelledError, discord.DiscordException):
                await self._task
        self.ctx.wiring.forget("discord")  # last: closing dispatches a disconnect that would set it

    async def sync_commands(self) -> None:
        """Global sync (Discord may take a while to show changes), or per configured guild."""
        guilds = self.ctx.settings.discord.guild_ids
        tree = self.client.tree
        if not guilds:
            synced = await tree.sync()
            log.info("discord commands synced", scope="global", count=len(synced))
            return
        for gid in guilds:
            guild = discord.Object(gid)
            tree.copy_global_to(guild=guild)
            synced = await tree.sync(guild=guild)
            log.info("discord commands synced", scope=f"guild {gid}", count=len(synced))

    # ------------------------------------------------------------ helpers

    def caller(self, interaction: discord.Interaction[Any]) -> Caller:
        user = interaction.user
        cfg = self.ctx.settings.discord
        # the bot can post in a server's channel (and knows its roles) only where the server
        # installed it; a member's user install used elsewhere answers by interaction and DM
        ours = interaction.is_guild_integration()
        by_role = (
            ours
            and isinstance(user, discord.Member)
            and any(user.get_role(rid) is not None for rid in cfg.admin_role_ids)
        )
        in_guild = interaction.guild_id is not None
        return Caller(
            "discord",
            str(user.id),
            user.name,
            # where to tell the member when a DM cannot be delivered (a DM has no elsewhere)
            str(interaction.channel_id) if ours and interaction.channel_id else None,
            is_admin=user.id in cfg.admin_ids or by_role,
            back=(("guild_id", str(interaction.guild_id)),) if in_guild else (),
        )


INVITE = "https://discord.com/oauth2/authorize?client_id={app}&"
SERVER_PERMISSIONS = 51200  # Send Messages, Embed Links, Attach Files: the DM-closed notice


def invite_links(application_id: int) -> tuple[str, str]:
    """The two ways to add the app: to a server (the bot joins; every command, /revenue and
    /import for its admins) and to one's own account (commands anywhere, no bot user)."""
    base = INVITE.format(app=application_id)
    server = f"{base}scope=bot+applications.commands&permissions={SERVER_PERMISSIONS}"
    return f"{server}&integration_type=0", f"{base}scope=applications.commands&integration_type=1"


def _gateway_ended(task: asyncio.Task[None]) -> None:
    if not task.cancelled() and task.exception() is not None:
        log.error("discord gateway stopped", error=repr(task.exception())[:300])
