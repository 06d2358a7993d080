"""The Telegram bot: python-telegram-bot ``Application`` with long polling.

Handlers only translate: they build a :class:`~core.results.Caller`, call a core use case
and render its result (texts.py). Outbound messages are delivered by :class:`TelegramSender`
from the outbox.
"""

from __future__ import annotations

import tempfile
from collections.abc import Awaitable, Callable, Coroutine
from pathlib import Path
from typing import Any, Protocol

from telegram import (
    BotCommand,
    BotCommandScopeAllGroupChats,
    BotCommandScopeAllPrivateChats,
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LabeledPrice,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, Forbidden, InvalidToken, RetryAfter, TelegramError
from telegram.ext import (
    Application,
    CallbackQueryHandler,
    CommandHandler,
    ContextTypes,
    InlineQueryHandler,
    MessageHandler,
    PreCheckoutQueryHandler,
    filters,
)

from adapters.telegram import texts
from core.context import Context
from core.errors import ConfigError, InvalidInput
from core.logging import get_logger, log_context
from core.outbox_contract import Delivery, OutboundMessage
from core.payments import stars
from core.pipeline import imported
from core.results import AlreadyOwned, Caller, Granted, Quote, Refused, Transcript
from core.service import cards, catalog, imports, notices, purchases
from core.service import chat as chat_service
from core.service import revenue as revenue_service
from core.service import wallet as wallet_service
from core.spaces import parse_space

log = get_logger("spacescribe.telegram")

COMMANDS = [
    ("transcribe", "Transcript of an X Space (link or id)"),
    ("unlock", "Unlock AI chat on a Space you own"),
    ("chat", "Ask a question across Spaces"),
    ("myspaces", "Your Spaces, or a transcript file (md, json, srt, vtt)"),
    ("status", "Processing status of a Space"),
    ("popular", "Most bought Spaces"),
    ("search", "Search titles and participants"),
    ("wallet", "Link your wallet, see your credit"),
    ("revenue", "Revenue (admins)"),
    ("import", "Import a Space's recording (admins)"),
    ("help", "What the bot does and costs"),
    ("paysupport", "Help with a payment"),
    ("terms", "Terms of sale"),
]
# In groups: what makes sense in front of others (wallet links and revenue stay private).
GROUP_COMMANDS = [c for c in COMMANDS if c[0] not in ("wallet", "revenue", "import")]
WEBHOOK_PATH = "/telegram/webhook"
STARS_BUTTON = "stars:"  # callback data of "Pay with Stars": stars:<invoice public id>
INLINE_CACHE_SECONDS = 30  # Telegram may reuse an inline answer this long (prices, status)


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


class Webhooks(Protocol):
    """Where webhook updates arrive: the receivers the web server's route reads, given by the
    wiring (``bot/``): the application object, ``ctx.wiring``."""

    def add_webhook(
        self, platform: str, secret: str, receive: Callable[[dict[str, Any]], Awaitable[None]]
    ) -> None: ...

    def remove_webhook(self, platform: str) -> None: ...


def _with_update_id(fn: Handler) -> Handler:
    """Every log line a command emits carries its update id."""

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        with log_context(update=update.update_id):
            await fn(update, context)

    return handler


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
        for name, fn in (
            ("start", self.start_cmd),
            ("help", self.help_cmd),
            ("status", self.status_cmd),
            ("transcribe", self.transcribe_cmd),
            ("unlock", self.unlock_cmd),
            ("myspaces", self.myspaces_cmd),
            ("popular", self.popular_cmd),
            ("chat", self.chat_cmd),
            ("search", self.search_cmd),
            ("wallet", self.wallet_cmd),
            ("revenue", self.revenue_cmd),
            ("paysupport", self.paysupport_cmd),
            ("terms", self.terms_cmd),
            ("import", self.import_cmd),
        ):
            self.app.add_handler(CommandHandler(name, _with_update_id(fn)))
        # Telegram Stars: the button, Telegram's question before charging, and its receipt
        self.app.add_handler(
            CallbackQueryHandler(_with_update_id(self.stars_button), pattern=f"^{STARS_BUTTON}")
        )
        self.app.add_handler(PreCheckoutQueryHandler(_with_update_id(self.pre_checkout)))
        # inline mode (BotFather /setinline): "@bot <link or words>" in any chat
        self.app.add_handler(InlineQueryHandler(_with_update_id(self.inline_query)))
        self.app.add_handler(
            MessageHandler(filters.SUCCESSFUL_PAYMENT, _with_update_id(self.successful_payment))
        )
        # an admin's recording: audio, voice or a document captioned "/import <space>"
        self.app.add_handler(
            MessageHandler(
                (filters.AUDIO | filters.VOICE | filters.Document.ALL)
                & filters.CaptionRegex(r"^/import(@\w+)?(\s|$)"),
                _with_update_id(self.import_upload),
            )
        )
        self.app.add_error_handler(self.on_error)
        self.sender = TelegramSender(self)

    async def on_error(self, update: object, context: ContextTypes.DEFAULT_TYPE) -> None:
        """A handler failed: log it with context and tell the member something went wrong."""
        log.error("telegram handler failed", error=repr(context.error)[:300])
        if isinstance(update, Update) and update.effective_message is not None:
            try:
                await update.effective_message.reply_text(
                    "Something went wrong on our side; nothing was charged. Try again shortly."
                )
            except TelegramError:
                pass

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
            [BotCommand(c, d) for c, d in COMMANDS], scope=BotCommandScopeAllPrivateChats()
        )
        await bot.set_my_commands(
            [BotCommand(c, d) for c, d in GROUP_COMMANDS], scope=BotCommandScopeAllGroupChats()
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

    # ------------------------------------------------------------ helpers

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

    async def reply(self, update: Update, text: str, markup: Any = None) -> None:
        msg = update.effective_message
        assert msg is not None
        for part in texts.chunks(text):
            await msg.reply_text(
                part, parse_mode=ParseMode.HTML, reply_markup=markup, disable_web_page_preview=True
            )

    async def render(self, update: Update, result: object) -> None:
        if isinstance(result, Refused):
            await self.reply(update, texts.refused(result))
        elif isinstance(result, Quote):
            await self.send_quote(update, result)
        elif isinstance(result, AlreadyOwned):
            await self.reply(update, texts.owned(result))
            if result.transcript:
                await self.send_transcript(update.effective_user.id, result.transcript)  # type: ignore[union-attr]
        elif isinstance(result, Granted):
            await self.reply(update, texts.granted(result))

    async def send_quote(self, update: Update, q: Quote) -> None:
        """The quote, with a button per payment method the operator allows."""
        t = self.ctx.settings.telegram
        in_stars = None
        if stars.offers_stars(self.ctx.settings, bool(q.credit_applied)):
            in_stars = stars.stars_price(self.ctx.settings.prices, q.kind, len(q.space_ids))
        buttons = []
        if t.usdc_enabled:
            buttons.append(InlineKeyboardButton("Pay with USDC", url=q.pay_url))
        if in_stars is not None:
            buttons.append(
                InlineKeyboardButton(
                    f"Pay with Stars ⭐ {in_stars}", callback_data=STARS_BUTTON + q.invoice_id
                )
            )
        text = texts.quote(q, in_stars, usdc=t.usdc_enabled)
        markup = InlineKeyboardMarkup([buttons]) if buttons else None
        await self.reply_privately(update, text, markup, "the payment details")

    async def reply_privately(self, update: Update, text: str, markup: Any, what: str) -> None:
        """In a group, personal links (payment, wallet) go to the member's private chat."""
        chat = update.effective_chat
        if chat is None or chat.type == ChatType.PRIVATE:
            await self.reply(update, text, markup)
            return
        try:
            for part in texts.chunks(text):
                await self.app.bot.send_message(
                    update.effective_user.id,  # type: ignore[union-attr]
                    part,
                    parse_mode=ParseMode.HTML,
                    reply_markup=markup,
                    disable_web_page_preview=True,
                )
            await self.reply(update, f"I sent you {what} privately.")
        except Forbidden:
            await self.reply(update, texts.start_private_first(self.app.bot.username))

    async def send_transcript(self, chat_id: int | str, t: Transcript) -> None:
        if t.overview is not None and t.format == "md" and (text := texts.overview(t.overview)):
            await self.app.bot.send_message(
                chat_id, text, parse_mode=ParseMode.HTML, disable_web_page_preview=True
            )
        await self.app.bot.send_document(
            chat_id,
            t.content,
            filename=f"transcript.{t.format}",
            caption=texts.transcript_caption(t),
            parse_mode=ParseMode.HTML,
        )

    def args(self, context: ContextTypes.DEFAULT_TYPE) -> str:
        return " ".join(context.args or []).strip()

    # ------------------------------------------------------------ commands

    async def start_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        payload = self.args(context)
        if payload.startswith("resend_"):
            result = await catalog.transcript_for(self.ctx, self.caller(update), payload[7:])
            if isinstance(result, Transcript):
                await self.send_transcript(update.effective_user.id, result)  # type: ignore[union-attr]
                return
            await self.render(update, result)
            return
        if payload.startswith(texts.ANSWER_START):  # a paid answer whose DM was refused
            answer_id = payload.removeprefix(texts.ANSWER_START)
            shown = await chat_service.answer_for(self.ctx, self.caller(update), answer_id)
            if isinstance(shown, Refused):
                await self.reply(update, texts.refused(shown))
                return
            await self.reply_privately(update, texts.answer(shown), None, "your answer")
            return
        if payload.startswith(texts.BUY_START):  # a Space card's button: the private quote
            space = payload.removeprefix(texts.BUY_START)
            await self.render(
                update, await purchases.request_transcription(self.ctx, self.caller(update), space)
            )
            return
        if payload.startswith("paid_"):  # back from the pay page: what the member now has
            items = await catalog.my_spaces(self.ctx, self.caller(update))
            await self.reply(update, texts.back_from_payment(items))
            return
        await self.help_cmd(update, context)
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        # a private /start: the bot can reach the member now
        if released := await notices.reachable_again(self.ctx, self.caller(update)):
            await self.reply(update, texts.redelivering(released))

    async def help_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        p = self.ctx.settings.prices
        from core.money import display

        await self.reply(
            update,
            texts.HELP.format(
                transcription=display(p.transcription),
                unlock=display(p.chat_unlock),
                chat_base=display(p.chat_base),
                per_space=display(p.chat_per_space),
            ),
        )

    async def status_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not self.args(context):
            await self.reply(update, texts.usage("status", "<space link or id>"))
            return
        result = await catalog.status(self.ctx, self.args(context))
        await self.reply(
            update, texts.refused(result) if isinstance(result, Refused) else texts.status(result)
        )

    async def transcribe_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not self.args(context):
            await self.reply(update, texts.usage("transcribe", "<space link or id>"))
            return
        await self.render(
            update,
            await purchases.request_transcription(
                self.ctx, self.caller(update), self.args(context)
            ),
        )

    async def unlock_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not self.args(context):
            await self.reply(update, texts.usage("unlock", "<space link or id>"))
            return
        await self.render(
            update,
            await purchases.request_unlock(self.ctx, self.caller(update), self.args(context)),
        )

    async def myspaces_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = list(context.args or [])
        if args:  # /myspaces <space> [md|json|srt|vtt]: that file of a Space one owns
            if len(args) > 2:
                await self.reply(update, texts.usage("myspaces", "[<space> [md|json|srt|vtt]]"))
                return
            fmt = args[1] if len(args) == 2 else "md"
            result = await catalog.transcript_for(self.ctx, self.caller(update), args[0], fmt)
            if isinstance(result, Refused):
                await self.reply(update, texts.refused(result))
                return
            await self.send_transcript(update.effective_user.id, result)  # type: ignore[union-attr]
            return
        await self.reply(
            update, texts.my_spaces(await catalog.my_spaces(self.ctx, self.caller(update)))
        )

    async def popular_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, texts.popular(await catalog.popular(self.ctx)))

    async def chat_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = list(context.args or [])
        spaces: list[str] = []
        while args and _looks_like_space(args[-1]):  # trailing Space links/ids; the rest asks
            spaces.insert(0, args.pop())
        if not args or not spaces:
            await self.reply(update, texts.usage("chat", "<question> <space> [space…]"))
            return
        await self.render(
            update, await chat_service.ask(self.ctx, self.caller(update), " ".join(args), spaces)
        )

    async def search_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        words = self.args(context)
        if not words:
            await self.reply(update, texts.usage("search", "<words>"))
            return
        hits = await chat_service.search(self.ctx, self.caller(update), words)
        await self.reply(
            update, texts.refused(hits) if isinstance(hits, Refused) else texts.search(hits)
        )

    async def wallet_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        info = await wallet_service.wallet(self.ctx, self.caller(update))
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Link wallet", url=info.link_url)]])
        await self.reply_privately(update, texts.wallet(info), markup, "your wallet link")

    async def paysupport_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, texts.paysupport(self.ctx.settings.telegram.support_contact))

    async def terms_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await self.reply(update, texts.terms(self.ctx.settings))

    # ------------------------------------------------------------ inline mode

    async def inline_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Space cards for what is typed after the bot's name; each posts the Space with a
        Buy button, a deep link whose /start opens the presser's private quote."""
        q = update.inline_query
        assert q is not None
        found = await cards.cards(self.ctx, q.query)
        if isinstance(found, Refused):
            results = [_article("refused", f"⚠️ {found.message}", "", texts.refused(found))]
        elif not found:
            results = [_article("none", texts.NO_CARDS, q.query[:64], texts.no_cards(q.query))]
        else:
            bot = self.app.bot.username
            results = [
                _article(
                    c.space_id,
                    texts.card_title(c),
                    texts.card_description(c),
                    texts.card(c),
                    InlineKeyboardMarkup(
                        [
                            [
                                InlineKeyboardButton(
                                    texts.BUY_BUTTON, url=texts.buy_link(bot, c.space_id)
                                )
                            ]
                        ]
                    ),
                )
                for c in found
            ]
        # the same for everyone: nothing in a card is the asker's
        await q.answer(results, cache_time=INLINE_CACHE_SECONDS, is_personal=False)

    # ------------------------------------------------------------ Telegram Stars

    async def stars_button(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """ "Pay with Stars": the invoice is sent (sendInvoice, XTR); nothing is granted yet."""
        query = update.callback_query
        assert query is not None
        await query.answer()
        public_id = (query.data or "").removeprefix(STARS_BUTTON)
        got = await stars.offer(self.ctx, self.caller(update), public_id)
        if isinstance(got, Refused):
            await self.app.bot.send_message(
                query.from_user.id, texts.refused(got), parse_mode=ParseMode.HTML
            )
            return
        await self.app.bot.send_invoice(
            chat_id=query.from_user.id,
            title=got.title,
            description=got.description,
            payload=got.invoice_id,
            provider_token="",  # Stars need none
            currency=stars.CURRENCY,
            prices=[LabeledPrice(got.label, got.amount)],
        )

    async def pre_checkout(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Telegram waits at most 10 s for this answer: a few indexed reads, then answer."""
        q = update.pre_checkout_query
        assert q is not None
        refused = await stars.pre_checkout(
            self.ctx, self.caller(update), q.invoice_payload, q.currency, q.total_amount
        )
        if refused is None:
            await q.answer(ok=True)
        else:
            await q.answer(ok=False, error_message=refused.message)

    async def successful_payment(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """The only place a Stars purchase is granted; the outbox confirms it."""
        msg = update.effective_message
        assert msg is not None and msg.successful_payment is not None
        sp = msg.successful_payment
        result = await stars.paid(
            self.ctx,
            self.caller(update),
            payload=sp.invoice_payload,
            currency=sp.currency,
            total_amount=sp.total_amount,
            charge_id=sp.telegram_payment_charge_id,
            provider_charge_id=sp.provider_payment_charge_id,
        )
        log.info("stars payment", outcome=result.outcome, invoice=result.invoice_id)

    async def revenue_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        rep = await revenue_service.report(
            self.ctx, self.caller(update), self.args(context) or "week"
        )
        if isinstance(rep, Refused):
            await self.reply(update, texts.refused(rep))
            return
        await self.reply(update, texts.revenue(rep))
        if rep.chart_png and update.effective_chat is not None:
            await self.app.bot.send_photo(
                update.effective_chat.id, rep.chart_png, caption=f"Revenue per day ({rep.period})"
            )

    async def import_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/import`` as text: the recording must come with it (the caption of a file)."""
        refused = imports.allowed(self.caller(update))
        await self.reply(update, texts.refused(refused) if refused else texts.IMPORT_HOWTO)

    async def import_upload(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An admin's recording for a Space X cannot give: checked before it is fetched
        (admin, Space, size), then fetched to a temporary folder and imported."""
        msg = update.effective_message
        assert msg is not None
        caller = self.caller(update)
        words = (msg.caption or "").split(maxsplit=2)
        space = words[1] if len(words) > 1 else ""
        title = words[2].strip()[:300] if len(words) > 2 else None
        sid = await imports.precheck(self.ctx, caller, space, force=False)
        if isinstance(sid, Refused):
            await self.reply(update, texts.refused(sid))
            return
        media = msg.audio or msg.voice or msg.document
        assert media is not None  # the handler's filter
        name = getattr(media, "file_name", None) or "the recording"
        limits = imported.Limits.of(self.ctx.settings.transcription)
        size = media.file_size  # what Telegram announces: refused before it is fetched
        too_big = None if size is None else imported.size_problem(size, name, limits)
        if too_big is not None:
            await self.reply(update, texts.refused(too_big))
            return
        with tempfile.TemporaryDirectory(prefix="spacescribe-tg-") as tmp:
            path = Path(tmp) / "recording"
            try:
                tg_file = await media.get_file()
                await tg_file.download_to_drive(path)
            except BadRequest as e:
                log.warning("telegram import fetch refused", error=str(e)[:200])
                await self.reply(update, f"⚠️ {texts.TOO_BIG_FOR_TELEGRAM}")
                return
            out = await imports.import_recording(
                self.ctx, caller, sid, path, name=name, meta=imports.Metadata(title=title)
            )
        if isinstance(out, Refused):
            await self.reply(update, texts.refused(out))
            return
        await self.reply(update, texts.imported(out.summary()))


def _article(
    result_id: str, title: str, description: str, html: str, markup: Any = None
) -> InlineQueryResultArticle:
    return InlineQueryResultArticle(
        id=result_id,
        title=title[:256],
        description=description or None,
        input_message_content=InputTextMessageContent(
            html[: texts.MAX_MESSAGE], parse_mode=ParseMode.HTML, disable_web_page_preview=True
        ),
        reply_markup=markup,
    )


def _looks_like_space(token: str) -> bool:
    try:
        parse_space(token)
        return True
    except InvalidInput:
        return False


class TelegramSender:
    """Delivers outbox messages to Telegram users (the outbox's MessageSender)."""

    platform = "telegram"

    def __init__(self, bot: TelegramBot) -> None:
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
                await self.bot.send_transcript(message.recipient, t)
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
