"""Discord and the enrichment: the DM with the transcript carries takeaways and chapters
(within 2,000 characters), /myspaces hands out md, json, srt or vtt, and /popular shows the
free teaser (chapter titles) but never the takeaways or quotes."""

from __future__ import annotations

import json

from sqlalchemy import select

from adapters.discord.bot import DiscordBot
from core import outbox
from core.context import Context
from core.db import Space
from core.enrich import service
from core.enrich.model import Enrichment
from core.pipeline.render import TranscriptDoc, to_json
from core.pipeline.storage import SpaceFiles
from core.pipeline.transcribe.base import Segment
from tests.discord.conftest import ANN, owned_space
from tests.discord.test_delivery import _queue
from tests.enrich.synth import make_space
from tests.stand_ins.discord_api import DiscordAPI


async def enriched_space(ctx: Context) -> tuple[str, Enrichment]:
    sid = await owned_space(ctx, 1, ANN, title="Builders weekly")
    segs, _ = make_space(1.0, seed=9)
    doc = TranscriptDoc(
        sid, "Builders weekly", None, f"https://x.com/i/spaces/{sid}", None, 3600.0,
        "offline", ["alice"], [], [Segment.from_json(s) for s in segs],
    )  # fmt: skip
    SpaceFiles.of(ctx.spaces_dir, sid).json.write_text(to_json(doc))
    async with ctx.db.session() as s:
        pk = await s.scalar(select(Space.id).where(Space.space_id == sid))
    out = await service.enrich_space(ctx, int(pk or 0), sid)
    assert isinstance(out, Enrichment) and out.takeaways and out.quotes
    return sid, out


async def test_transcript_dm_carries_the_overview_and_formats(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    sid, e = await enriched_space(ctx)
    await _queue(ctx, sid)
    assert await outbox.drain_once(ctx, "w") == 1
    (dm,) = api.dms(ANN)
    assert "**Key takeaways**" in dm["content"] and "**Chapters**" in dm["content"]
    assert len(dm["content"]) <= 2000 and e.chapters[0].title in dm["content"]
    for fmt in ("md", "json", "srt", "vtt"):
        r = await api.reply(
            await api.interact("myspaces", {"space": sid, "format": fmt}, user_id=ANN)
        )
        assert r.ephemeral and r.files[0]["filename"] == f"transcript.{fmt}", fmt
    r = await api.reply(
        await api.interact("myspaces", {"space": sid, "format": "json"}, user_id=ANN)
    )
    assert json.loads(r.files[0]["content"])["enrichment"]["takeaways"]


async def test_popular_shows_chapter_titles_and_nothing_paid(
    ctx: Context, dc: tuple[DiscordAPI, DiscordBot]
) -> None:
    api, _ = dc
    sid, e = await enriched_space(ctx)
    r = await api.reply(await api.interact("popular", user_id=42))
    assert "Chapters:" in r.text and e.chapters[1].title in r.text
    for t in e.takeaways:
        assert t.text not in r.text
    for q in e.quotes:
        assert q.text not in r.text
