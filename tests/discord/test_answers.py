"""A paid answer whose DM Discord refuses is not a dead end, through discord.py against the
local Discord stand-in, paid on the local chain (anvil, EIP-3009 USDC):

/chat → ephemeral quote → paid → the DM is refused (403, 50007) → the member is mentioned in
the channel with a "Show my answer" button (a persistent ``DynamicItem`` whose custom_id
carries the answer's id) → pressing it shows them, ephemerally, the answer they paid for,
once per press, also after the bot restarted; another member pressing it gets the not-found
refusal; forged presses with malformed ids get a specific refusal; none changes anything.
"""

from __future__ import annotations

from typing import Any

import discord
import httpx
from sqlalchemy import func, select

from adapters.discord import texts
from adapters.discord.bot import DiscordBot
from adapters.discord.commands import AnswerButton
from core import outbox
from core.context import Context
from core.db import ChatSession, Invoice, Outbox, Space
from core.results import Caller
from core.service import chat
from tests.chat.helpers import member
from tests.discord.conftest import ANN, BOB, owned_space, running, started
from tests.discord.test_end_to_end import _pay
from tests.payments.conftest import pay_ctx  # noqa: F401  (fixture)
from tests.snapshot import snapshot
from tests.stand_ins.chain import Chain
from tests.stand_ins.discord_api import (
    AUTOCOMPLETE,
    CHANNEL_ID,
    COMMAND,
    COMPONENT,
    DiscordAPI,
    Interaction,
    Reply,
    discord_api,
)

QUESTION = "When is the launch date?"


async def press(api: DiscordAPI, message: dict[str, Any], user: int, **kw: Any) -> Reply:
    """Press a button of ``message`` as ``user``: the bot defers ephemerally, then answers."""
    it = await api.click(message, user_id=user, **kw)
    reply = await api.reply(it)
    deferred = it.replies[0]
    assert (deferred.how, deferred.type, deferred.ephemeral) == ("callback", 5, True)
    assert reply.how == "followup" and reply.ephemeral and len(it.replies) == 2
    return reply


async def test_closed_dms_answer_is_shown_by_the_button_to_its_payer_only(
    pay_ctx: Context,  # noqa: F811
    chain: Chain,
    fresh_payer: Any,
    endpoints: None,
) -> None:
    ctx = pay_ctx
    a = await owned_space(ctx, 1, ANN, unlocked=True, title="Launch planning")
    b = await owned_space(ctx, 2, ANN, unlocked=True, title="Launch review")
    async with ctx.db.session() as s:
        pks = list((await s.execute(select(Space.id).order_by(Space.id))).scalars())
    # Bob owns and unlocked the same Spaces: he may ask his own questions, not see Ann's answer
    await member(ctx, "bob", owns=pks, unlocked=pks, caller=Caller("discord", str(BOB)))
    async with running(ctx) as (api, bot):
        api.dms_closed.add(ANN)
        quote = await api.reply(
            await api.interact("chat", {"question": QUESTION, "space1": a, "space2": b})
        )
        await _pay(ctx, chain, fresh_payer, quote.buttons[0]["url"], 1_100_000)
        assert await outbox.drain_once(ctx, "w") == 2  # the answer and the confirmation
        assert api.dms(ANN) == []
        async with ctx.db.session() as s:
            (row,) = (await s.execute(select(ChatSession))).scalars()
            statuses = dict((await s.execute(select(Outbox.kind, Outbox.status))).tuples().all())
        assert statuses == {"chat_answer": "fallback", "payment_confirmed": "fallback"}

        (told,) = [m for m in api.channel(CHANNEL_ID) if m["components"]]
        assert told["content"] == texts.answer_dm_closed(str(ANN))
        assert QUESTION not in told["content"] and "ninth" not in told["content"]
        ((button,),) = [row["components"] for row in told["components"]]
        assert button["type"] == 2 and button["style"] == 1 and isinstance(button["id"], int)
        assert (button["label"], button["custom_id"]) == (
            "Show my answer",
            f"answer:{row.session_id}",
        )
        (sent,) = [
            c
            for c in api.sent("POST", rf"/channels/{CHANNEL_ID}/messages")
            if c.body.get("components")
        ]
        assert sent.body["allowed_mentions"] == {"parse": [], "users": [ANN]}
        # the paid answer, exactly as its DM would have shown it, only to Ann, every press
        recorded = await chat.answer_of(ctx, row.session_id)
        assert recorded is not None
        expected = texts.answer(recorded).kwargs()["embed"].to_dict()
        before = await snapshot(ctx)
        for _ in range(2):
            shown = await press(api, told, ANN)
            assert shown.data["embeds"] == [expected]
            assert "ninth of May" in shown.text and QUESTION in shown.text
            assert {f["name"].split()[1] for f in shown.data["embeds"][0]["fields"]} == {a, b}

        # Bob presses the same button: the not-found refusal, nothing of the answer
        refused = await press(api, told, BOB)
        assert refused.text.startswith("⚠️ You have no answer with this id")
        assert "ninth" not in refused.text and not refused.data.get("embeds")
        # buttons with an unknown id read the same; malformed ids are refused as such (on
        # Discord a press carries a custom_id of the message; say, one an older bot posted)
        posted = []
        for aid in (
            "0f8fad5b-d9cb-469f-a165-70867728950e",
            "",
            "../../etc/passwd",
            row.session_id.upper(),
        ):
            view = discord.ui.View(timeout=None)
            view.add_item(AnswerButton(aid))
            msg = await bot.client.get_partial_messageable(CHANNEL_ID).send("old", view=view)
            (stored,) = [m for m in api.channel(CHANNEL_ID) if m["id"] == str(msg.id)]
            posted.append(await press(api, stored, ANN))
        assert posted[0].text == refused.text
        for r in posted[1:]:
            assert r.text.startswith("⚠️ That is not an answer id"), r.text
        assert await snapshot(ctx) == before

        # the button is persistent: a restarted bot still answers it
        await bot.stop()
        async with started(DiscordBot(ctx, api.token)):
            again = await press(api, told, ANN)
            assert again.data["embeds"] == [expected]
        assert api.dms(ANN) == [] and len(api.channel(CHANNEL_ID)) == 2 + 4  # nothing else said
    async with ctx.db.session() as s:  # shown again, never answered (or charged) again
        assert await s.scalar(select(func.count()).select_from(ChatSession)) == 1
        assert await s.scalar(select(func.count()).select_from(Invoice)) == 1


async def test_stand_in_takes_only_the_callbacks_discord_takes_for_each_interaction() -> None:
    """The stand-in's own rule, which the presses above rely on: 6/7 (update the message)
    only for components, 8 (choices) only for autocomplete."""
    async with discord_api() as api, httpx.AsyncClient() as client:
        for kind, good, bad in ((COMMAND, 5, 6), (COMPONENT, 6, 8), (AUTOCOMPLETE, 8, 5)):
            it = Interaction(api.snowflake(), f"token-{kind}", ANN, CHANNEL_ID, kind)
            api.interactions[it.id] = it
            url = f"{api.api_url}/interactions/{it.id}/{it.token}/callback"
            refused = await client.post(url, json={"type": bad})
            assert (refused.status_code, refused.json()["code"]) == (400, 50035)
            taken = await client.post(url, json={"type": good})
            assert taken.status_code == 200 and taken.json()["interaction"]["type"] == kind
            assert [r.type for r in it.replies] == [good]
