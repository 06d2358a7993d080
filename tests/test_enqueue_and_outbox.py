"""enqueue / add_message / accounts are idempotent and race-safe on both engines."""

import asyncio

import pytest
from sqlalchemy import func, select

from core import accounts
from core.context import Context
from core.db import Outbox, ProcessingJob, Space, utcnow
from core.outbox import add_message
from core.queue import claim, enqueue
from core.results import Caller
from tests.queue.test_queue import complete


async def _space(ctx: Context, sid: str = "1RDxlAoOeQRKL") -> int:
    async with ctx.db.session() as s:
        sp = Space(
            space_id=sid,
            space_url=f"https://x.com/i/spaces/{sid}",
            title="t",
            first_requested_at=utcnow(),
        )
        s.add(sp)
        await s.flush()
        return sp.id


async def test_one_live_job_per_space(ctx: Context) -> None:
    pk = await _space(ctx)

    async def once() -> bool:
        async with ctx.db.session() as s:
            return await enqueue(s, pk)

    results = await asyncio.gather(*(once() for _ in range(10)))
    assert results.count(True) == 1
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(ProcessingJob)) == 1
        job = (await s.execute(select(ProcessingJob))).scalar_one()
        job.status = "completed"
    async with ctx.db.session() as s:
        assert await enqueue(s, pk) is True  # a finished job does not block a new one


async def test_outbox_dedupe(ctx: Context) -> None:
    for _ in range(3):
        async with ctx.db.session() as s:
            await add_message(
                s,
                kind="transcript_ready",
                platform="telegram",
                recipient="42",
                payload={"space_id": "1RDxlAoOeQRKL"},
                dedupe_key="k1",
            )
    async with ctx.db.session() as s:
        assert await s.scalar(select(func.count()).select_from(Outbox)) == 1


async def test_accounts_and_users(ctx: Context) -> None:
    c = Caller("telegram", "123", "ann")
    async with ctx.db.session() as s:
        a1 = await accounts.get_or_create_account(s, c)
        a2 = await accounts.get_or_create_account(s, c)
        assert a1.id == a2.id and a1.user_id is None
        u = await accounts.get_or_create_user(s, "0x" + "AB" * 20)
        assert u.wallet_address == "0x" + "ab" * 20
        await accounts.link_account(s, a1.id, u.id)
    async with ctx.db.session() as s:
        assert await accounts.user_id_for(s, c) == u.id
        assert await accounts.user_id_for(s, Caller("discord", "123")) is None


async def test_paid_space_is_queued_with_the_configured_attempts(ctx: Context) -> None:
    from core.payments.credit import credit_invoice
    from core.payments.invoices import insert_invoice

    ctx.settings.queue.max_retries = 7
    async with ctx.db.session() as s:
        inv = await insert_invoice(
            s,
            ctx,
            kind="transcription",
            account_id=None,
            user_id=None,
            space_ids=["1RDxlAoOeQRKL"],
            amount_units=200_000,
        )
        await credit_invoice(
            s, ctx, inv, payer="0x" + "ab" * 20, transaction_hash="0x01", receipt_id=None
        )
    async with ctx.db.session() as s:
        job = (await s.execute(select(ProcessingJob))).scalar_one()
    assert (job.status, job.max_retries) == ("queued", 7)


async def _buy(ctx: Context, caller: Caller, wallet: str, sid: str) -> None:
    from core.payments.credit import credit_invoice
    from core.payments.invoices import insert_invoice

    async with ctx.db.session() as s:
        acc = await accounts.get_or_create_account(s, caller)
        inv = await insert_invoice(
            s,
            ctx,
            kind="transcription",
            account_id=acc.id,
            user_id=None,
            space_ids=[sid],
            amount_units=200_000,
        )
        await credit_invoice(s, ctx, inv, payer=wallet, transaction_hash=None, receipt_id=None)


async def test_a_purchase_racing_the_completion_is_delivered_once(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """A payer credited while the Space's job completes gets one transcript_ready: from the
    completion if it saw the payment, else from the crediting — never none, never two."""
    from core.payments import credit

    sid = "1RDxlAoOeQRKL"
    await _buy(ctx, Caller("telegram", "1"), "0x" + "01" * 20, sid)
    async with ctx.db.session() as s:
        job = await claim(s, "w")
    assert job is not None
    real = credit._space_row
    completions: list[asyncio.Task[set[int]]] = []

    async def completing() -> set[int]:
        async with ctx.db.session() as s:
            return await complete(s, [job.id], "w")

    async def racing(session, space_id, title):  # type: ignore[no-untyped-def]
        space = await real(session, space_id, title)
        completions.append(asyncio.create_task(completing()))
        await asyncio.sleep(0.5)  # the job completes now, unless this purchase holds it back
        return space

    monkeypatch.setattr(credit, "_space_row", racing)
    await _buy(ctx, Caller("telegram", "2"), "0x" + "02" * 20, sid)
    assert await completions[0] == {job.id}
    async with ctx.db.session() as s:
        ready = select(Outbox.recipient).where(Outbox.kind == "transcript_ready")
        assert sorted((await s.execute(ready)).scalars()) == ["1", "2"]


async def test_a_purchase_racing_a_claim_never_deadlocks(
    ctx: Context, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Crediting locks the Space's live job before the Space, as workers do: a claim that
    starts while a purchase holds its locks waits or skips, never deadlocks (PostgreSQL)."""
    from core.payments import credit
    from core.queue import claim_many

    sid = "1RDxlAoOeQRKL"
    await _buy(ctx, Caller("telegram", "1"), "0x" + "01" * 20, sid)  # queued, unclaimed
    real = credit._space_row
    claims: list[asyncio.Task[list[object]]] = []

    async def claim_now() -> list[object]:
        async with ctx.db.session() as s:
            return list(await claim_many(s, "w", 1))

    async def racing(session, space_id, title):  # type: ignore[no-untyped-def]
        space = await real(session, space_id, title)
        claims.append(asyncio.create_task(claim_now()))
        await asyncio.sleep(0.5)  # the claim runs now, against this purchase's locks
        return space

    monkeypatch.setattr(credit, "_space_row", racing)
    await _buy(ctx, Caller("telegram", "2"), "0x" + "02" * 20, sid)
    claimed = await claims[0]
    async with ctx.db.session() as s:
        later = list(await claim_many(s, "w", 1))
        jobs = (await s.execute(select(ProcessingJob))).scalars().all()
    assert len(claimed) + len(later) == 1  # claimed once, now or right after
    assert [(j.status, j.locked_by) for j in jobs] == [("processing", "w")]
