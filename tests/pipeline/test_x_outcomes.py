"""Every outcome of yt-dlp's X Spaces extractor, through the REAL extractor.

Production's resolver (``XSpacesResolver`` → yt-dlp ``TwitterSpacesIE``) talks to a local X
(``tests/stand_ins/x_spaces.py``) through yt-dlp's own networking layer. One test per row
of the README's outcome table, plus the library (no X at all) and the waits of a live Space.
"""

from __future__ import annotations

import time
from collections.abc import AsyncIterator
from pathlib import Path

import pytest
from sqlalchemy import select

from core import queue
from core.context import Context
from core.db import Credit, Outbox, ProcessingJob, Space, TranscriptionPayment, User, utcnow
from core.pipeline import xspaces
from core.pipeline.run import Checked, check_space, process_space
from core.pipeline.xspaces import COOKIES_HINT, Outcome
from core.results import Refused
from core.worker import Worker
from tests.factories import completed_space
from tests.stand_ins.x_spaces import XSpace, XStandIn, x_stand_in, x_unreachable

SID = "1XOUTCOME0001"


@pytest.fixture
async def x(hls_root: Path) -> AsyncIterator[XStandIn]:
    # a fresh context's resolver is the production one: yt-dlp's real extractor
    xspaces.note_answered()
    async with x_stand_in(hls_root) as stand_in:
        yield stand_in
    xspaces.note_answered()


async def _refused(ctx: Context, code: str) -> Refused:
    out = await check_space(ctx, SID)
    assert isinstance(out, Refused), out
    assert out.code == code, out
    return out


async def test_ready_space_metadata(ctx: Context, x: XStandIn) -> None:
    x.add(XSpace(SID, started_at=1_700_000_000))
    out = await check_space(ctx, SID)
    assert isinstance(out, Checked) and not out.from_library and out.note is None
    assert (out.title, out.creator) == ("Weekly weather space", "alice")
    assert out.started_at is not None and int(out.started_at.timestamp()) == 1_700_000_000
    assert x.calls[:2] == ["guest", "AudioSpaceById"]


async def test_not_found(ctx: Context, x: XStandIn) -> None:
    out = await _refused(ctx, "space_not_found")
    assert "does not exist" in out.message


async def test_private_with_our_cookies(ctx: Context, x: XStandIn, tmp_path: Path) -> None:
    # logged in (an auth_token cookie for X) and X still says "not authorized": private
    cookies = tmp_path / "cookies.txt"
    cookies.write_text(
        "# Netscape HTTP Cookie File\n.x.com\tTRUE\t/\tTRUE\t2147483647\tauth_token\tsecret\n"
    )
    ctx.settings.transcription.cookies_file = str(cookies)
    x.unauthorized.add(SID)
    out = await _refused(ctx, "space_private")
    assert "private" in out.message


async def test_replay_disabled_refused_before_payment(ctx: Context, x: XStandIn) -> None:
    x.add(XSpace(SID, replay=False))
    out = await _refused(ctx, "space_no_replay")
    assert "without a replay" in out.message


@pytest.mark.parametrize(
    ("state", "words"),
    [("NotStarted", "has not started yet"), ("Running", "is live")],
)
async def test_scheduled_and_live_are_accepted(
    ctx: Context, x: XStandIn, state: str, words: str
) -> None:
    x.add(XSpace(SID, state=state, scheduled_start=time.time() + 600))
    out = await check_space(ctx, SID)
    assert isinstance(out, Checked), out
    assert out.note is not None and words in out.note and "when it ends" in out.note


async def test_ended_not_downloadable_yet_is_accepted(ctx: Context, x: XStandIn) -> None:
    x.add(XSpace(SID, state="TimedOut", stream=False))
    out = await check_space(ctx, SID)
    assert isinstance(out, Checked) and out.note and "preparing its replay" in out.note


@pytest.mark.parametrize("how", ["refused", "empty", "login"])
async def test_x_refuses_us(ctx: Context, x: XStandIn, how: str) -> None:
    if how == "login":
        x.add(XSpace(SID))
        x.unauthorized.add(SID)  # no cookies: X wants a login
    else:
        x.guest = how  # 403 on the guest token, or no token at all
    out = await _refused(ctx, "x_refuses_us")
    assert "operator problem" in out.message and "Nothing was charged" in out.message
    assert xspaces.refused_since() is not None  # /readyz, /metrics and doctor say so
    from core.health import x_refusal

    assert await x_refusal(ctx) == COOKIES_HINT


async def test_network_unreachable(ctx: Context, hls_root: Path) -> None:
    async with x_unreachable():
        out = await _refused(ctx, "space_unreachable")
    assert "could not be reached" in out.message and "Try again" in out.message


def test_pinned_messages_are_yt_dlp_s() -> None:
    """The few outcomes yt-dlp gives only as words: its pinned source still says them."""
    import inspect

    from yt_dlp.extractor import twitter

    src = inspect.getsource(twitter)
    for msg in (
        xspaces.MSG_NOT_FOUND,
        xspaces.MSG_REPLAY_DISABLED,
        xspaces.MSG_NOT_STARTED,
        xspaces.MSG_NOT_DOWNLOADABLE,
        xspaces.MSG_NO_GUEST_TOKEN,
    ):
        assert f"'{msg}'" in src, msg
    assert "'not authorized' in error_msg.lower()" in src
    assert twitter.TwitterSpacesIE.SPACE_STATUS == {
        "notstarted": "is_upcoming",
        "ended": "was_live",
        "running": "is_live",
        "timedout": "post_live",
    }


# ---------------------------------------------------------------- the library: no X at all


async def _completed_row(ctx: Context) -> None:
    async with ctx.db.session() as s:
        s.add(
            completed_space(SID, "From the library", creator="carol", audio_duration_seconds=3600)
        )


async def test_library_space_is_checked_without_x(ctx: Context, x: XStandIn) -> None:
    await _completed_row(ctx)
    out = await check_space(ctx, SID)
    assert isinstance(out, Checked) and out.from_library
    assert (out.title, out.creator, out.duration_seconds) == ("From the library", "carol", 3600)
    assert x.calls == []
    async with x_unreachable():
        assert isinstance(await check_space(ctx, SID), Checked)


# ---------------------------------------------------------------- after payment: the job


async def _paid_space(ctx: Context, wallets: list[str], title: str = "t") -> int:
    """A Space bought by each wallet (as credit_invoice leaves it), queued."""
    async with ctx.db.session() as s:
        sp = Space(
            space_id=SID,
            space_url=f"https://x.com/i/spaces/{SID}",
            title=title,
            first_requested_at=utcnow(),
        )
        s.add(sp)
        await s.flush()
        for w in wallets:
            u = User(wallet_address=w)
            s.add(u)
            await s.flush()
            s.add(
                TranscriptionPayment(
                    user_id=u.id, space_id=sp.id, amount_usdc="0.200000", payment_verified=True
                )
            )
        await queue.enqueue(s, sp.id, max_retries=3)
        return sp.id


async def _credits(ctx: Context) -> list[tuple[int, str]]:
    async with ctx.db.session() as s:
        return [(c.amount_units, c.reference) for c in (await s.execute(select(Credit))).scalars()]


async def test_replay_disabled_after_payment_credits_every_payer(ctx: Context, x: XStandIn) -> None:
    x.add(XSpace(SID, replay=False))
    pk = await _paid_space(ctx, ["0x" + "a" * 40, "0x" + "b" * 40])
    assert await Worker(ctx, worker_id="w", processor=_processor()).run_one()
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        assert sp is not None and sp.status == "failed"
        assert "without a replay" in (sp.error_message or "")
    credits = await _credits(ctx)
    assert sorted(u for u, _ in credits) == [200_000, 200_000]
    # run the settlement again (a second worker, a reaper): nobody is credited twice
    from core.refunds import settle_failed_space

    async with ctx.db.session() as s:
        assert await settle_failed_space(s, ctx.settings, pk) == 0
    assert len(await _credits(ctx)) == 2


def _processor():  # type: ignore[no-untyped-def]
    async def run(c: Context, space_pk: int) -> None:
        await process_space(c, space_pk)

    return run


async def test_live_space_waits_then_is_transcribed(
    ctx: Context, x: XStandIn, speech: Path
) -> None:
    """Paid while live → waits (no attempt counted) → ends → replay not ready → replay
    appears → downloaded through the real extractor and transcribed → delivered once."""
    ctx.settings.transcription.backend = "offline"
    ctx.settings.transcription.chunk_seconds = 30
    space = x.add(XSpace(SID, state="Running", started_at=time.time() - 600))
    pk = await _paid_space(ctx, ["0x" + "c" * 40])
    w = Worker(ctx, worker_id="w", processor=_processor())

    async def job() -> ProcessingJob:
        async with ctx.db.session() as s:
            return (await s.execute(select(ProcessingJob))).scalar_one()

    async def poll_now() -> None:  # the backoff has passed
        async with ctx.db.session() as s:
            j = (await s.execute(select(ProcessingJob))).scalar_one()
            j.available_at = utcnow()

    assert await w.run_one()
    j = await job()
    assert (j.status, j.retry_count) == ("queued", 0)
    assert j.available_at is not None and j.available_at > utcnow()  # polled later
    assert not await w.run_one()  # nothing to do before the backoff
    space.state, space.stream = "TimedOut", False  # ended, replay not downloadable yet
    await poll_now()
    assert await w.run_one()
    assert ((await job()).status, (await job()).retry_count) == ("queued", 0)
    space.state, space.stream = "Ended", True
    await poll_now()
    assert await w.run_one()
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        assert sp is not None and sp.status == "completed", sp.error_message
        assert sp.creator == "alice"
        ready = (await s.execute(select(Outbox).where(Outbox.kind == "transcript_ready"))).scalars()
        assert len(list(ready)) == 0  # payers here have no chat account: nothing to send
    assert (await job()).status == "completed"
    assert any(c.startswith("media:") for c in x.calls)  # the audio came through X's answer


async def test_scheduled_space_that_never_starts_credits_payers(ctx: Context, x: XStandIn) -> None:
    ctx.settings.transcription.live_wait_hours = 1
    x.add(XSpace(SID, state="NotStarted", started_at=None, scheduled_start=time.time() - 7200))
    pk = await _paid_space(ctx, ["0x" + "d" * 40, "0x" + "e" * 40])
    assert await Worker(ctx, worker_id="w", processor=_processor()).run_one()
    async with ctx.db.session() as s:
        sp = await s.get(Space, pk)
        assert sp is not None and sp.status == "failed"
        assert "never started" in (sp.error_message or "")
    assert sorted(u for u, _ in await _credits(ctx)) == [200_000, 200_000]


async def test_x_refusing_us_is_retried_not_failed(ctx: Context, x: XStandIn) -> None:
    x.guest = "refused"
    await _paid_space(ctx, ["0x" + "f" * 40])
    assert await Worker(ctx, worker_id="w", processor=_processor()).run_one()
    async with ctx.db.session() as s:
        j = (await s.execute(select(ProcessingJob))).scalar_one()
    assert j.status == "queued" and (j.error_message or "").startswith(COOKIES_HINT)
    assert await _credits(ctx) == []
    xspaces.note_answered()  # another process: the queue still tells
    from core.health import x_refusal

    assert await x_refusal(ctx) == COOKIES_HINT


@pytest.mark.parametrize("outcome", list(Outcome))
def test_every_outcome_has_user_words(outcome: Outcome) -> None:
    if outcome is not Outcome.READY:
        assert xspaces.USER_TEXT[outcome]
