"""An admin imports a recording with Discord's ``/import space attachment``, through
discord.py against the Discord stand-in (the attachment resolved in the interaction and
fetched from the stand-in's CDN). The member waiting on the Space gets the transcript by
DM, once; members who are not admins are refused before the attachment is fetched.
"""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core import outbox
from core.context import Context
from core.db import Space
from core.results import Caller
from core.worker import Worker
from tests.chat.helpers import member
from tests.discord.conftest import ADMIN, ANN, running
from tests.pipeline.test_import import SID, NoX, _waiting_space
from tests.snapshot import snapshot
from tests.stand_ins.discord_api import ADMIN_ROLE_ID, CHANNEL_ID, DiscordAPI, Upload


@pytest.fixture
async def api(ctx: Context, endpoints: None) -> AsyncIterator[DiscordAPI]:
    ctx.settings.transcription.backend = "offline"
    ctx.settings.transcription.chunk_seconds = 30
    ctx.wiring.resolver = NoX()
    async with running(ctx) as (a, _bot):
        yield a


async def test_admin_import_serves_the_waiting_member_once(
    ctx: Context, api: DiscordAPI, speech: Path
) -> None:
    pk = await _waiting_space(ctx, "waiting", payers=())
    caller = Caller("discord", str(ANN), chat_id=str(CHANNEL_ID))
    await member(ctx, "dc-ann", owns=[pk], caller=caller)
    up = Upload(speech.read_bytes(), "talk.wav", "audio/wav")
    reply = await api.reply(
        await api.interact(
            "import", {"space": SID, "attachment": up, "title": "Launch talk"}, user_id=ADMIN
        )
    )
    assert reply.ephemeral and "Imported" in reply.text and "1 payer(s)" in reply.text, reply.text
    assert len(api.fetched) == 1
    assert await Worker(ctx, worker_id="w").run_space(SID)
    async with ctx.db.session() as s:
        row = (await s.execute(select(Space))).scalar_one()
    assert (row.status, row.title) == ("completed", "Launch talk"), row.error_message
    while await outbox.drain_once(ctx, "test"):
        pass
    dms = api.dms(ANN)
    assert len(dms) == 1, dms
    assert await outbox.drain_once(ctx, "test") == 0 and len(api.dms(ANN)) == 1  # once


async def test_an_admin_by_role_may_import(ctx: Context, api: DiscordAPI, speech: Path) -> None:
    up = Upload(speech.read_bytes(), "talk.wav", "audio/wav")
    it = await api.interact(
        "import", {"space": SID, "attachment": up}, user_id=42, roles=[ADMIN_ROLE_ID]
    )
    reply = await api.reply(it)
    assert "Imported" in reply.text and "Nobody has paid for it yet" in reply.text, reply.text


@pytest.mark.parametrize("case", ["member", "not audio", "too big", "completed"])
async def test_refusals_leave_nothing(
    ctx: Context, api: DiscordAPI, speech: Path, case: str
) -> None:
    user, up = ADMIN, Upload(speech.read_bytes(), "talk.wav", "audio/wav")
    if case == "member":
        user = ANN
    if case == "not audio":
        up = Upload(b"%PDF-1.4 not a recording\n" * 40, "slides.pdf", "application/pdf")
    if case == "too big":
        ctx.settings.transcription.import_max_mb = 0.05
    if case == "completed":
        async with ctx.db.session() as s:
            s.add(Space(space_id=SID, space_url="u", title="Done", status="completed"))
    before = await snapshot(ctx)
    reply = await api.reply(
        await api.interact("import", {"space": SID, "attachment": up}, user_id=user)
    )
    expect = {
        "member": "Only the bot's admins can import recordings",
        "not audio": "slides.pdf holds no audio stream",
        "too big": f"talk.wav is {len(up.content) / 1e6:.1f} MB; an imported recording may be "
        "at most 0.1 MB",
        "completed": "is already transcribed",
    }[case]
    assert reply.text.startswith("⚠️") and expect in reply.text, reply.text
    assert bool(api.fetched) == (case == "not audio")  # the rest: refused before fetching
    assert await snapshot(ctx) == before
