"""Bot webhooks served by the app's web server.

A bot in webhook mode adds its receiver and secret to the application object
(``ctx.wiring.webhooks``, given to it by ``bot/wiring.py``); the route checks Telegram's
``X-Telegram-Bot-Api-Secret-Token`` header in constant time before anything is parsed.
"""

from __future__ import annotations

import hmac

from fastapi import APIRouter, Request, Response

from adapters.web.pages import TOO_LARGE, json_response, read_json
from core.errors import InvalidInput
from core.logging import get_logger

log = get_logger("spacescribe.webhooks")
router = APIRouter()


@router.post("/telegram/webhook", include_in_schema=False)
async def telegram_webhook(request: Request) -> Response:
    ctx = request.app.state.ctx
    hook = ctx.wiring.webhooks.get("telegram")
    if hook is None:
        return json_response(
            {"error": "webhook_off", "message": "The Telegram bot is not in webhook mode here."},
            404,
        )
    given = request.headers.get("x-telegram-bot-api-secret-token", "")
    if not hmac.compare_digest(given.encode(), hook.secret.encode()):
        log.warning("telegram webhook: wrong secret token", client=_client(request))
        return json_response({"error": "forbidden", "message": "Wrong secret token."}, 403)
    # an update carries at most a 4096-character message: the API body limit fits it
    update = await read_json(request, ctx.settings.web.max_body_bytes)
    if isinstance(update, str):
        return _invalid(update, 413 if update.startswith(TOO_LARGE) else 400)
    if not isinstance(update.get("update_id"), int):
        return _invalid("it has no update_id")
    try:
        await hook.receive(update)
    except InvalidInput as exc:  # the bot's library could not read it
        return _invalid(str(exc))
    return json_response({"ok": True})


def _invalid(why: str, status: int = 400) -> Response:
    return json_response(
        {"error": "invalid_update", "message": f"Not a Telegram update: {why}."}, status
    )


def _client(request: Request) -> str:
    return request.client.host if request.client else "?"
