"""Read-only use cases on both engines: status with queue position, my_spaces, popular."""

from core import accounts
from core.context import Context
from core.db import ProcessingJob, Space, TranscriptionPayment, utcnow
from core.queue import position
from core.results import Caller, Refused
from core.service import catalog
from core.service.views import space_json, space_view
from tests.factories import completed_space

A, B, C = "1AAAAAAAAAAAA", "1BBBBBBBBBBBB", "1CCCCCCCCCCCC"


async def _seed(ctx: Context) -> Caller:
    caller = Caller("telegram", "7", "ann")
    async with ctx.db.session() as s:
        spaces = {}
        for sid, st, n in ((A, "completed", 5), (B, "pending", 1), (C, "pending", 0)):
            sp = Space(
                space_id=sid,
                space_url=f"https://x.com/i/spaces/{sid}",
                title=f"T {sid}",
                status=st,
                transcription_count=n,
                first_requested_at=utcnow(),
            )
            s.add(sp)
            await s.flush()
            spaces[sid] = sp
        s.add(ProcessingJob(space_id=spaces[C].id, priority=5, queued_at=utcnow()))
        s.add(ProcessingJob(space_id=spaces[B].id, priority=0, queued_at=utcnow()))
        user = await accounts.get_or_create_user(s, "0x" + "11" * 20)
        acc = await accounts.get_or_create_account(s, caller)
        await accounts.link_account(s, acc.id, user.id)
        for sid in (A, B):
            s.add(
                TranscriptionPayment(
                    user_id=user.id,
                    space_id=spaces[sid].id,
                    amount_usdc="0.2",
                    payment_verified=True,
                    paid_at=utcnow(),
                )
            )
    return caller


async def test_status_and_queue_position(ctx: Context) -> None:
    await _seed(ctx)
    c = await catalog.status(ctx, C)
    b = await catalog.status(ctx, f"https://x.com/i/spaces/{B}")
    assert not isinstance(b, Refused) and not isinstance(c, Refused)
    assert (c.queue_position, b.queue_position) == (1, 2)  # priority DESC first
    unknown = await catalog.status(ctx, "1ZZZZZZZZZZZZ")
    assert isinstance(unknown, Refused) and unknown.code == "unknown_space"
    bad = await catalog.status(ctx, "https://evil.com/x")
    assert isinstance(bad, Refused) and bad.code == "invalid_space"


async def test_my_spaces_and_popular(ctx: Context) -> None:
    caller = await _seed(ctx)
    mine = await catalog.my_spaces(ctx, caller)
    assert {m.space.space_id for m in mine} == {A, B}
    assert await catalog.my_spaces(ctx, Caller("discord", "7")) == []
    pop = await catalog.popular(ctx)
    assert [p.space_id for p in pop] == [A]  # completed only (seed query 4)


async def test_transcript_for_checks_ownership(ctx: Context) -> None:
    caller = await _seed(ctx)
    r = await catalog.transcript_for(ctx, Caller("discord", "9"), A)
    assert isinstance(r, Refused) and r.code == "not_owned"
    r = await catalog.transcript_for(ctx, caller, A)  # completed but file missing
    assert isinstance(r, Refused) and r.code == "not_ready"
    path = ctx.spaces_dir / A / "transcript.md"
    path.parent.mkdir(parents=True)
    path.write_text("# T\n")
    t = await catalog.transcript_for(ctx, caller, A)  # made before 0011: this machine's file
    assert not isinstance(t, Refused) and t.content == b"# T\n"


async def test_space_status_is_the_orm_view_for_every_status(ctx: Context) -> None:
    """``space_status`` (one statement, no ORM object) shows exactly what ``space_view`` of the
    ORM row with ``queue.position`` shows: queued, processing, failed (its error), completed
    (chapters, participants, times) and a job that finished (no position)."""
    await _seed(ctx)
    now = utcnow()
    async with ctx.db.session() as s:
        s.add(
            completed_space(
                "1DDDDDDDDDDDD",
                "Done",
                participants='["Ann", "Bo"]',
                chapter_titles='["Intro", "Q&A"]',
                space_started_at=now,
                audio_duration_seconds=61,
                chat_unlock_count=2,
            )
        )
        failed = Space(
            space_id="1EEEEEEEEEEEE",
            space_url="https://x.com/i/spaces/1EEEEEEEEEEEE",
            title="Broke",
            status="failed",
            error_message="no audio",
            chapter_titles='["hidden unless completed"]',
        )
        s.add(failed)
        s.add(
            Space(
                space_id="1FFFFFFFFFFFF",
                space_url="https://x.com/i/spaces/1FFFFFFFFFFFF",
                title="Going",
                status="processing",
                error_message="an earlier attempt's error, not shown",
            )
        )
        await s.flush()
        s.add(ProcessingJob(space_id=failed.id, status="failed", queued_at=now))
    for sid in (A, B, C, "1DDDDDDDDDDDD", "1EEEEEEEEEEEE", "1FFFFFFFFFFFF"):
        fast = await catalog.space_status(ctx.db.reader, sid)
        async with ctx.db.read() as s:
            space = await catalog.find_space(s, sid)
            assert space is not None
            orm = space_view(space, await position(s, space.id))
        assert fast == orm, sid
        assert space_json(fast) == space_json(orm)
    assert await catalog.space_status(ctx.db.reader, "1ZZZZZZZZZZZZ") is None
