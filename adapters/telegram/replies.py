"""What the commands and the sender share: the bot as they see it, answering an update, and
sending a transcript.

It imports neither the bot nor the commands nor the sender (they import it), so the Telegram
adapter's modules have no import cycle: bot → commands, sender → replies.
"""

from __future__ import annotations

from typing import Any, Protocol

from telegram import Bot, Update
from telegram.constants import ChatType, ParseMode
from telegram.error import Forbidden
from telegram.ext import Application, ContextTypes

from adapters.telegram import texts
from core.context import Context
from core.results import Caller, Transcript


class Host(Protocol):
    """The bot, as its commands and sender use it (:class:`~adapters.telegram.bot.TelegramBot`)."""

    @property
    def ctx(self) -> Context: ...

    @property
    def app(self) -> Application[Any, Any, Any, Any, Any, Any]: ...

    def caller(self, update: Update) -> Caller: ...


def args(context: ContextTypes.DEFAULT_TYPE) -> str:
    """A command's words after its name."""
    return " ".join(context.args or []).strip()


async def reply(update: Update, text: str, markup: Any = None) -> None:
    """Answer in the chat the update came from (HTML, in parts Telegram accepts)."""
    msg = update.effective_message
    assert msg is not None
    for part in texts.chunks(text):
        await msg.reply_text(
            part, parse_mode=ParseMode.HTML, reply_markup=markup, disable_web_page_preview=True
        )


async def reply_privately(host: Host, update: Update, text: str, markup: Any, what: str) -> None:
    """In a group, personal links (payment, wallet) go to the member's private chat."""
    chat = update.effective_chat
    if chat is None or chat.type == ChatType.PRIVATE:
        await reply(update, text, markup)
        return
    try:
        for part in texts.chunks(text):
            await host.app.bot.send_message(
                update.effective_user.id,  # type: ignore[union-attr]
                part,
                parse_mode=ParseMode.HTML,
                reply_markup=markup,
                disable_web_page_preview=True,
            )
        await reply(update, f"I sent you {what} privately.")
    except Forbidden:
        await reply(update, texts.start_private_first(host.app.bot.username))


async def send_transcript(bot: Bot, chat_id: int | str, t: Transcript) -> None:
    """A transcript file, after its overview (the Markdown file's)."""
    if t.overview is not None and t.format == "md" and (text := texts.overview(t.overview)):
        await bot.send_message(
            chat_id, text, parse_mode=ParseMode.HTML, disable_web_page_preview=True
        )
    await bot.send_document(
        chat_id,
        t.content,
        filename=f"transcript.{t.format}",
        caption=texts.transcript_caption(t),
        parse_mode=ParseMode.HTML,
    )
