"""The Telegram bot: python-telegram-bot ``Application`` with long polling or a webhook.

Its handlers are one :class:`~adapters.telegram.commands.Commands` object (which translate only:
they build a :class:`~core.results.Caller`, call a core use case and render its result,
texts.py). Outbound messages are delivered by
:class:`~adapters.telegram.sender.TelegramSender` from the outbox.
"""

from __future__ import annotations

from collections.abc import Awaitable, Callable
from typing import Any, Protocol

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    Update,
)
from telegram.error import InvalidToken
from telegram.ext import Application

from adapters.telegram import commands
from adapters.telegram.sender import TelegramSender
from core.context import Context
from core.errors import ConfigError, InvalidInput
from core.logging import get_logger
from core.results import Caller

log = get_logger("spacescribe.telegram")

WEBHOOK_PATH = "/telegram/webhook"


class Webhooks(Protocol):
    """Where webhook updates arrive: the receivers the web server's route reads, given by the
    wiring (``bot/``): the application object, ``ctx.wiring``."""

    def add_webhook(
        self, platform: str, secret: str, receive: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None: ...

    def remove_webhook(self, platform: str) -> None: ...


class TelegramBot:
    name = "telegram"

    def __init__(
        self,
        ctx: Context,
        token: str,
        webhook_secret: str | None = None,
        webhooks: Webhooks | None = None,
    ) -> None:
        self.ctx = ctx
        self.webhook_secret = webhook_secret
        self.webhooks = webhooks
        if ctx.settings.telegram.mode == "webhook" and not webhook_secret:
            raise ConfigError("TELEGRAM_WEBHOOK_SECRET is not set (telegram.mode = webhook)")
        if ctx.settings.telegram.mode == "webhook" and webhooks is None:
            raise ConfigError("telegram.mode = webhook needs the web server's webhook route")
        b = Application.builder().token(token)
        if ctx.settings.telegram.base_url:
            base = ctx.settings.telegram.base_url.rstrip("/")
            b = b.base_url(f"{base}/bot").base_file_url(f"{base}/file/bot")
        self.app: Application[Any, Any, Any, Any, Any, Any] = b.build()
        self.commands = commands.Commands(self)
        self.commands.register(self.app)
        self.sender = TelegramSender(self)

    # ------------------------------------------------------------ lifecycle

    async def start(self) -> None:
        try:
            await self.app.initialize()
        except InvalidToken:  # its message quotes the token: never shown, never logged
            raise ConfigError(
                "TELEGRAM_TOKEN was refused by Telegram (401): copy the token again from "
                "@BotFather (/mybots → your bot → API Token)"
            ) from None
        bot = self.app.bot
        await bot.set_my_commands(
            [BotCommand(c, d) for c, d in commands.COMMANDS], scope=BotCommandScopeAllPrivateChats()
        )
        await bot.set_my_commands(
            [BotCommand(c, d) for c, d in commands.GROUP_COMMANDS],
            scope=BotCommandScopeAllGroupChats(),
        )
        if not bot.supports_inline_queries:
            log.info("telegram inline mode is off; BotFather /setinline turns it on")
        await self.app.start()
        if self.webhook_secret and self.ctx.settings.telegram.mode == "webhook":
            assert self.webhooks is not None  # checked in __init__
            url = self.ctx.settings.web.public_url.rstrip("/") + WEBHOOK_PATH
            # Updates arrive on the web server (same process) and join the update queue.
            self.webhooks.add_webhook("telegram", self.webhook_secret, self.receive)
            await bot.set_webhook(url, secret_token=self.webhook_secret)
            log.info("telegram webhook set", url=url)
        else:
            assert self.app.updater is not None
            await self.app.updater.start_polling(drop_pending_updates=False)
        self.ctx.wiring.add_sender(self.sender)
        self.ctx.wiring.set_connected("telegram", True)
        log.info(
            "telegram bot started", username=bot.username, mode=self.ctx.settings.telegram.mode
        )

    async def receive(self, data: dict[str, Any]) -> None:
        """One update posted to the webhook (already authenticated by its secret token)."""
        try:
            update = Update.de_json(data, self.app.bot)
        except (KeyError, TypeError, ValueError, AttributeError) as exc:
            raise InvalidInput("the Bot API library could not read it") from exc
        if update is not None:
            await self.app.update_queue.put(update)

    async def stop(self) -> None:
        self.ctx.wiring.remove_sender("telegram")
        if self.webhooks is not None:
            self.webhooks.remove_webhook("telegram")
        self.ctx.wiring.forget("telegram")
        if self.app.updater is not None and self.app.updater.running:
            await self.app.updater.stop()
        if self.app.running:
            await self.app.stop()
        await self.app.shutdown()

    # ------------------------------------------------------------ for commands and sender

    def caller(self, update: Update) -> Caller:
        user = update.effective_user
        assert user is not None
        chat = update.effective_chat
        return Caller(
            "telegram",
            str(user.id),
            user.username or user.full_name,
            str(chat.id) if chat else None,
            is_admin=user.id in self.ctx.settings.telegram.admin_ids,
            back=(("bot_username", self.app.bot.username),),
        )
