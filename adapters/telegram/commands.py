"""The Telegram commands, one :class:`Commands` object: the slash commands, the deep links
``/start`` opens, inline mode, the "Pay with Stars" button and Telegram's payment updates, and
an admin's recording upload. Each handler builds the :class:`~core.results.Caller`, calls one
core operation and renders its result (texts.py). :meth:`Commands.register` adds every handler
to the bot's ``Application``, each wrapped so its log lines carry the update id, and
:meth:`Commands.on_error` answers every handler's failure.

In a group, personal links (payment, wallet) go to the member's private chat.
"""

from __future__ import annotations

import tempfile
from collections.abc import Callable, Coroutine
from pathlib import Path
from typing import Any

from telegram import (
    InlineKeyboardButton,
    InlineKeyboardMarkup,
    InlineQueryResultArticle,
    InputTextMessageContent,
    LabeledPrice,
    Update,
)
from telegram.constants import ChatType, ParseMode
from telegram.error import BadRequest, TelegramError
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
from adapters.telegram.replies import Host, args, reply, reply_privately, send_transcript
from core.errors import InvalidInput
from core.logging import get_logger, log_context
from core.money import display
from core.payments import stars
from core.pipeline import imported
from core.results import AlreadyOwned, Granted, Quote, Refused, Transcript
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
STARS_BUTTON = "stars:"  # callback data of "Pay with Stars": stars:<invoice public id>
INLINE_CACHE_SECONDS = 30  # Telegram may reuse an inline answer this long (prices, status)


Handler = Callable[[Update, ContextTypes.DEFAULT_TYPE], Coroutine[Any, Any, None]]


def _with_update_id(fn: Handler) -> Handler:
    """Every log line a command emits carries its update id."""

    async def handler(update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        with log_context(update=update.update_id):
            await fn(update, context)

    return handler


class Commands:
    """Every handler of the bot, on the bot as they see it (:class:`~replies.Host`)."""

    def __init__(self, host: Host) -> None:
        self.host = host

    def register(self, app: Application[Any, Any, Any, Any, Any, Any]) -> None:
        """Every handler, in the order Telegram's updates are matched, and the error handler."""
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
            app.add_handler(CommandHandler(name, _with_update_id(fn)))
        # Telegram Stars: the button, Telegram's question before charging, and its receipt
        app.add_handler(
            CallbackQueryHandler(_with_update_id(self.stars_button), pattern=f"^{STARS_BUTTON}")
        )
        app.add_handler(PreCheckoutQueryHandler(_with_update_id(self.pre_checkout)))
        # inline mode (BotFather /setinline): "@bot <link or words>" in any chat
        app.add_handler(InlineQueryHandler(_with_update_id(self.inline_query)))
        app.add_handler(
            MessageHandler(filters.SUCCESSFUL_PAYMENT, _with_update_id(self.successful_payment))
        )
        # an admin's recording: audio, voice or a document captioned "/import <space>"
        app.add_handler(
            MessageHandler(
                (filters.AUDIO | filters.VOICE | filters.Document.ALL)
                & filters.CaptionRegex(r"^/import(@\w+)?(\s|$)"),
                _with_update_id(self.import_upload),
            )
        )
        app.add_error_handler(self.on_error)

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

    # ------------------------------------------------------------ rendering

    async def render(self, update: Update, result: object) -> None:
        if isinstance(result, Refused):
            await reply(update, texts.refused(result))
        elif isinstance(result, Quote):
            await self.send_quote(update, result)
        elif isinstance(result, AlreadyOwned):
            await reply(update, texts.owned(result))
            if result.transcript:
                await self.send_file(update, result.transcript)
        elif isinstance(result, Granted):
            await reply(update, texts.granted(result))

    async def send_file(self, update: Update, t: Transcript) -> None:
        """A transcript, to the member's private chat."""
        await send_transcript(self.host.app.bot, update.effective_user.id, t)  # type: ignore[union-attr]

    async def send_quote(self, update: Update, q: Quote) -> None:
        """The quote, with a button per payment method the operator allows."""
        t = self.host.ctx.settings.telegram
        in_stars = None
        if stars.offers_stars(self.host.ctx.settings, bool(q.credit_applied)):
            in_stars = stars.stars_price(self.host.ctx.settings.prices, q.kind, len(q.space_ids))
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
        await reply_privately(self.host, update, text, markup, "the payment details")

    # ------------------------------------------------------------ commands

    async def start_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        payload = args(context)
        if payload.startswith("resend_"):
            result = await catalog.transcript_for(
                self.host.ctx, self.host.caller(update), payload[7:]
            )
            if isinstance(result, Transcript):
                await self.send_file(update, result)
                return
            await self.render(update, result)
            return
        if payload.startswith(texts.ANSWER_START):  # a paid answer whose DM was refused
            answer_id = payload.removeprefix(texts.ANSWER_START)
            shown = await chat_service.answer_for(
                self.host.ctx, self.host.caller(update), answer_id
            )
            if isinstance(shown, Refused):
                await reply(update, texts.refused(shown))
                return
            await reply_privately(self.host, update, texts.answer(shown), None, "your answer")
            return
        if payload.startswith(texts.BUY_START):  # a Space card's button: the private quote
            space = payload.removeprefix(texts.BUY_START)
            await self.render(
                update,
                await purchases.request_transcription(
                    self.host.ctx, self.host.caller(update), space
                ),
            )
            return
        if payload.startswith("paid_"):  # back from the pay page: what the member now has
            items = await catalog.my_spaces(self.host.ctx, self.host.caller(update))
            await reply(update, texts.back_from_payment(items))
            return
        await self.help_cmd(update, context)
        chat = update.effective_chat
        if chat is None or chat.type != ChatType.PRIVATE:
            return
        # a private /start: the bot can reach the member now
        if released := await notices.reachable_again(self.host.ctx, self.host.caller(update)):
            await reply(update, texts.redelivering(released))

    async def help_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        p = self.host.ctx.settings.prices
        await reply(
            update,
            texts.HELP.format(
                transcription=display(p.transcription),
                unlock=display(p.chat_unlock),
                chat_base=display(p.chat_base),
                per_space=display(p.chat_per_space),
            ),
        )

    async def status_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not args(context):
            await reply(update, texts.usage("status", "<space link or id>"))
            return
        result = await catalog.status(self.host.ctx, args(context))
        await reply(
            update, texts.refused(result) if isinstance(result, Refused) else texts.status(result)
        )

    async def transcribe_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not args(context):
            await reply(update, texts.usage("transcribe", "<space link or id>"))
            return
        await self.render(
            update,
            await purchases.request_transcription(
                self.host.ctx, self.host.caller(update), args(context)
            ),
        )

    async def unlock_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        if not args(context):
            await reply(update, texts.usage("unlock", "<space link or id>"))
            return
        await self.render(
            update,
            await purchases.request_unlock(self.host.ctx, self.host.caller(update), args(context)),
        )

    async def myspaces_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = list(context.args or [])
        if args:  # /myspaces <space> [md|json|srt|vtt]: that file of a Space one owns
            if len(args) > 2:
                await reply(update, texts.usage("myspaces", "[<space> [md|json|srt|vtt]]"))
                return
            fmt = args[1] if len(args) == 2 else "md"
            result = await catalog.transcript_for(
                self.host.ctx, self.host.caller(update), args[0], fmt
            )
            if isinstance(result, Refused):
                await reply(update, texts.refused(result))
                return
            await self.send_file(update, result)
            return
        await reply(
            update,
            texts.my_spaces(await catalog.my_spaces(self.host.ctx, self.host.caller(update))),
        )

    async def popular_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await reply(update, texts.popular(await catalog.popular(self.host.ctx)))

    async def chat_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        args = list(context.args or [])
        spaces: list[str] = []
        while args and _looks_like_space(args[-1]):  # trailing Space links/ids; the rest asks
            spaces.insert(0, args.pop())
        if not args or not spaces:
            await reply(update, texts.usage("chat", "<question> <space> [space…]"))
            return
        await self.render(
            update,
            await chat_service.ask(self.host.ctx, self.host.caller(update), " ".join(args), spaces),
        )

    async def search_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        words = args(context)
        if not words:
            await reply(update, texts.usage("search", "<words>"))
            return
        hits = await chat_service.search(self.host.ctx, self.host.caller(update), words)
        await reply(
            update, texts.refused(hits) if isinstance(hits, Refused) else texts.search(hits)
        )

    async def wallet_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        info = await wallet_service.wallet(self.host.ctx, self.host.caller(update))
        markup = InlineKeyboardMarkup([[InlineKeyboardButton("Link wallet", url=info.link_url)]])
        await reply_privately(self.host, update, texts.wallet(info), markup, "your wallet link")

    async def paysupport_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await reply(update, texts.paysupport(self.host.ctx.settings.telegram.support_contact))

    async def terms_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        await reply(update, texts.terms(self.host.ctx.settings))

    # ------------------------------------------------------------ inline mode

    async def inline_query(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """Space cards for what is typed after the bot's name; each posts the Space with a
        Buy button, a deep link whose /start opens the presser's private quote."""
        q = update.inline_query
        assert q is not None
        found = await cards.cards(self.host.ctx, q.query)
        if isinstance(found, Refused):
            results = [_article("refused", f"⚠️ {found.message}", "", texts.refused(found))]
        elif not found:
            results = [_article("none", texts.NO_CARDS, q.query[:64], texts.no_cards(q.query))]
        else:
            bot = self.host.app.bot.username
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
        got = await stars.offer(self.host.ctx, self.host.caller(update), public_id)
        if isinstance(got, Refused):
            await self.host.app.bot.send_message(
                query.from_user.id, texts.refused(got), parse_mode=ParseMode.HTML
            )
            return
        await self.host.app.bot.send_invoice(
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
            self.host.ctx, self.host.caller(update), q.invoice_payload, q.currency, q.total_amount
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
            self.host.ctx,
            self.host.caller(update),
            payload=sp.invoice_payload,
            currency=sp.currency,
            total_amount=sp.total_amount,
            charge_id=sp.telegram_payment_charge_id,
            provider_charge_id=sp.provider_payment_charge_id,
        )
        log.info("stars payment", outcome=result.outcome, invoice=result.invoice_id)

    async def revenue_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        rep = await revenue_service.report(
            self.host.ctx, self.host.caller(update), args(context) or "week"
        )
        if isinstance(rep, Refused):
            await reply(update, texts.refused(rep))
            return
        await reply(update, texts.revenue(rep))
        if rep.chart_png and update.effective_chat is not None:
            await self.host.app.bot.send_photo(
                update.effective_chat.id, rep.chart_png, caption=f"Revenue per day ({rep.period})"
            )

    async def import_cmd(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """``/import`` as text: the recording must come with it (the caption of a file)."""
        refused = imports.allowed(self.host.caller(update))
        await reply(update, texts.refused(refused) if refused else texts.IMPORT_HOWTO)

    async def import_upload(self, update: Update, context: ContextTypes.DEFAULT_TYPE) -> None:
        """An admin's recording for a Space X cannot give: checked before it is fetched
        (admin, Space, size), then fetched to a temporary folder and imported."""
        msg = update.effective_message
        assert msg is not None
        caller = self.host.caller(update)
        words = (msg.caption or "").split(maxsplit=2)
        space = words[1] if len(words) > 1 else ""
        title = words[2].strip()[:300] if len(words) > 2 else None
        sid = await imports.precheck(self.host.ctx, caller, space, force=False)
        if isinstance(sid, Refused):
            await reply(update, texts.refused(sid))
            return
        media = msg.audio or msg.voice or msg.document
        assert media is not None  # the handler's filter
        name = getattr(media, "file_name", None) or "the recording"
        limits = imported.Limits.of(self.host.ctx.settings.transcription)
        size = media.file_size  # what Telegram announces: refused before it is fetched
        too_big = None if size is None else imported.size_problem(size, name, limits)
        if too_big is not None:
            await reply(update, texts.refused(too_big))
            return
        with tempfile.TemporaryDirectory(prefix="spacescribe-tg-") as tmp:
            path = Path(tmp) / "recording"
            try:
                tg_file = await media.get_file()
                await tg_file.download_to_drive(path)
            except BadRequest as e:
                log.warning("telegram import fetch refused", error=str(e)[:200])
                await reply(update, f"⚠️ {texts.TOO_BIG_FOR_TELEGRAM}")
                return
            out = await imports.import_recording(
                self.host.ctx, caller, sid, path, name=name, meta=imports.Metadata(title=title)
            )
        if isinstance(out, Refused):
            await reply(update, texts.refused(out))
            return
        await reply(update, texts.imported(out.summary()))


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
