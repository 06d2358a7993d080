"""Several machines drill (issue 15): PostgreSQL is the only thing they share.

Three real ``spacescribe run`` processes (the CLI, X pointed at the local HLS server by
``tests/drills/app_proc.py``), each with its own data directory, as three machines would have:
one runs ``bots,web,scheduler`` against the Telegram Bot API and Discord stand-ins, two run
``worker`` against the OpenAI audio stand-in. Paid Spaces (1–3 payers each, on Telegram and
Discord) are bought in the test process, which has a fourth data directory of its own.

The transcription stand-in holds every upload until both workers hold a job, so both
machines make transcripts. Then every payer must get their transcript as a direct message
exactly once, the document sent being the one stored in the database; the transcript is also
downloaded from the web process over HTTP. The bots machine's data directory never holds a
transcript, and each Space's audio is on exactly one worker.
"""

from __future__ import annotations

import asyncio
import random
import re
import time
from collections import Counter
from collections.abc import AsyncIterator
from contextlib import AsyncExitStack, asynccontextmanager
from pathlib import Path

import httpx
import pytest
from eth_account import Account
from eth_account.messages import encode_defunct
from sqlalchemy import select

from core.context import Context
from core.db import ProcessingJob, Space, TranscriptDocument
from core.payments.credit import credit_invoice
from core.payments.invoices import get_invoice
from core.payments.wallet_proof import transcript_message
from core.results import Quote
from core.service.invoicing import create_invoice
from core.service.purchases import price_units
from tests.drills.figures import record
from tests.drills.test_secrets import launched
from tests.drills.test_sigkill import PEOPLE, Buyers
from tests.pipeline.conftest import LocalResolver, hls_root, hls_url, resolver, speech  # noqa: F401
from tests.stand_ins.discord_api import DiscordAPI, discord_api
from tests.stand_ins.openai_audio import OpenAIAudio, openai_audio
from tests.stand_ins.telegram_api import BotAPI, bot_api
from tests.test_cli import _env, _free_port
from tests.test_compose import command_args

SPACES = 6
START_SECONDS = 180  # three processes importing everything on a loaded 2-core machine
STALL_SECONDS = 120  # nothing moved for this long: a hang, not a slow machine
SPACE_OF = re.compile(r"https://x\.com/i/spaces/(\w{13})")


async def _wallet_buys(ctx: Context, sid: str, wallet: str) -> None:
    """A purchase by a wallet alone (as the x402 API makes one), credited as paid."""
    async with ctx.db.session() as s:
        q = await create_invoice(
            s,
            ctx,
            caller=None,
            user_id=None,
            kind="transcription",
            space_ids=[sid],
            amount_units=price_units(ctx, "transcription"),
            payer_address=wallet,
        )
    assert isinstance(q, Quote), q
    async with ctx.db.session() as s:
        inv = await get_invoice(s, q.invoice_id)
        assert inv is not None
        done = await credit_invoice(
            s, ctx, inv, payer=wallet, transaction_hash="0x" + "ee" * 32, receipt_id=None
        )
    assert done.granted == [sid], done


def _telegram_documents(tg: BotAPI) -> Counter[tuple[str, str, str]]:
    """(recipient, Space id, content) of every transcript document the bot sent."""
    out: Counter[tuple[str, str, str]] = Counter()
    for params in tg.sent("sendDocument"):
        content = str(params["document"]["content"])
        found = SPACE_OF.search(content)
        out[(str(params["chat_id"]), found.group(1) if found else "?", content)] += 1
    return out


def _discord_files(dc: DiscordAPI) -> Counter[tuple[str, str, str]]:
    """Discord DMs with their files, from the REST calls (a nonce-deduplicated re-send
    counts once, as Discord keeps it once)."""
    users = {channel: user for user, channel in dc.dm_channels.items()}
    out: Counter[tuple[str, str, str]] = Counter()
    seen_nonces: set[str] = set()
    for call in dc.sent("POST", r"/channels/(\d+)/messages"):
        channel = int(call.path.split("/")[2])
        if channel not in users or call.status >= 300:
            continue
        nonce = str((call.body or {}).get("nonce") or "")
        if nonce and nonce in seen_nonces:
            continue
        seen_nonces.add(nonce)
        for f in call.files:
            if str(f.get("filename", "")).startswith("transcript"):
                content = f["content"].decode()
                found = SPACE_OF.search(content)
                out[(str(users[channel]), found.group(1) if found else "?", content)] += 1
    return out


@asynccontextmanager
async def machines(
    tmp: Path, db_url: str, hls: str, tg: BotAPI, dc: DiscordAPI, stt_url: str
) -> AsyncIterator[tuple[str, dict[str, Path]]]:
    """The bots+web+scheduler machine and two worker machines, each its own data dir."""
    port = _free_port()
    dirs = {name: tmp / name for name in ("bots", "worker-1", "worker-2")}
    common = {
        "SPACESCRIBE_PAYMENTS__PAY_TO": "0x" + "12" * 20,  # live mode; its node unreachable
        "SPACESCRIBE_QUEUE__POLL_SECONDS": "0.2",
    }
    bots = _env(
        dirs["bots"],
        db_url,
        **common,
        SPACESCRIBE_WEB__HOST="127.0.0.1",
        SPACESCRIBE_WEB__PORT=str(port),
        SPACESCRIBE_WEB__PUBLIC_URL=f"http://127.0.0.1:{port}",
        TELEGRAM_TOKEN=tg.token,
        SPACESCRIBE_TELEGRAM__BASE_URL=tg.url,
        DISCORD_TOKEN=dc.token,
        SPACESCRIBE_DISCORD__API_URL=dc.api_url,
    )
    worker = {
        **common,
        "OPENAI_API_KEY": "sk-drill",
        "OPENAI_BASE_URL": stt_url,
        "SPACESCRIBE_TRANSCRIPTION__BACKEND": "openai",
        "SPACESCRIBE_TRANSCRIPTION__MODEL": "whisper-1",
        "SPACESCRIBE_TRANSCRIPTION__CHUNK_SECONDS": "4",
        "SPACESCRIBE_TRANSCRIPTION__OVERLAP_SECONDS": "1",
        "SPACESCRIBE_TRANSCRIPTION__VAD": "false",
        "SPACESCRIBE_ENRICHMENT__BACKEND": "extractive",  # the stand-in has no chat model
    }
    async with AsyncExitStack() as stack:
        for name, path in dirs.items():
            path.mkdir()
            env = bots if name == "bots" else _env(path, db_url, **worker)
            # the very commands compose.yaml gives its app and worker services
            args = command_args("app" if name == "bots" else "worker")
            await stack.enter_async_context(launched(hls, env, args, tmp / f"{name}.log"))
        yield f"http://127.0.0.1:{port}", dirs


async def _holders(ctx: Context) -> set[str]:
    async with ctx.db.read() as s:
        held = await s.scalars(
            select(ProcessingJob.locked_by).where(ProcessingJob.status == "processing")
        )
        return {str(w) for w in held if w}


async def _stored_md(ctx: Context) -> dict[str, str]:
    async with ctx.db.read() as s:
        rows = await s.execute(
            select(Space.space_id, TranscriptDocument.content)
            .join(TranscriptDocument, TranscriptDocument.space_id == Space.id)
            .where(TranscriptDocument.format == "md")
        )
        return {str(sid): str(content) for sid, content in rows}


def _logs(tmp: Path) -> str:
    return "\n".join(f"--- {p.name}\n{p.read_text()[-2500:]}" for p in sorted(tmp.glob("*.log")))


@pytest.mark.timeout(900)  # a hang is caught by the stall guard; a busy machine is slow
@pytest.mark.parametrize("db_url", ["postgresql"], indirect=True)
async def test_three_machines_share_only_postgresql(
    ctx: Context,
    db_url: str,
    tmp_path: Path,
    hls_url: str,  # noqa: F811
    resolver: LocalResolver,  # noqa: F811  (the purchase's metadata check, in this process)
) -> None:
    t0 = time.monotonic()
    buyers = Buyers(ctx, random.Random(15))
    for _ in range(SPACES):
        await buyers.buy_space()
    expected = Counter(
        (PEOPLE[w].platform, PEOPLE[w].platform_user_id, sid)
        for sid, who in buyers.of.items()
        for w in who
    )
    owner = Account.create()  # a wallet that buys one Space over x402, to read it over HTTP
    bought = sorted(buyers.of)[0]
    await _wallet_buys(ctx, bought, owner.address.lower())
    machines_dir = tmp_path / "machines"
    machines_dir.mkdir()
    stt = OpenAIAudio()
    stt.gate.clear()  # every upload waits until both workers hold a job
    async with (
        openai_audio(stt) as stt,
        bot_api() as tg,
        discord_api() as dc,
        machines(machines_dir, db_url, hls_url, tg, dc, stt.url) as (web_url, dirs),
    ):
        deadline = time.monotonic() + START_SECONDS
        while len(await _holders(ctx)) < 2:
            assert time.monotonic() < deadline, (
                f"both workers never held a job\n{_logs(machines_dir)}"
            )
            await asyncio.sleep(0.1)
        workers = await _holders(ctx)
        stt.gate.set()

        def delivered() -> Counter[tuple[str, str, str]]:
            tg_docs = _telegram_documents(tg)
            dc_docs = _discord_files(dc)
            return Counter(
                {("telegram", r, sid): n for (r, sid, _), n in tg_docs.items()}
                | {("discord", r, sid): n for (r, sid, _), n in dc_docs.items()}
            )

        progress, deadline = 0, time.monotonic() + STALL_SECONDS
        while sum(delivered().values()) < sum(expected.values()):
            assert time.monotonic() < deadline, (
                f"stalled at {delivered()} of {expected}\n{_logs(machines_dir)}"
            )
            if (now := sum(delivered().values())) > progress:
                progress, deadline = now, time.monotonic() + STALL_SECONDS
            await asyncio.sleep(0.2)
        await asyncio.sleep(3 * 2.0)  # three more outbox drains: nothing is sent again
        stored = await _stored_md(ctx)
        tg_docs, dc_docs = _telegram_documents(tg), _discord_files(dc)

        # the transcript again, from the web machine, over HTTP (the deprecated wallet
        # headers: the shortest proof of the wallet that bought it)
        ts = int(time.time())
        signed = owner.sign_message(encode_defunct(text=transcript_message(bought, ts)))
        async with httpx.AsyncClient(base_url=web_url, timeout=60) as web:
            got = await web.get(
                f"/api/spaces/{bought}/transcript",
                headers={
                    "X-Wallet-Address": owner.address,
                    "X-Wallet-Timestamp": str(ts),
                    "X-Wallet-Signature": "0x" + signed.signature.hex().removeprefix("0x"),
                },
            )

    # every payer got the transcript once, and it is the database's document
    assert delivered() == expected, (delivered(), expected)
    for (recipient, sid, content), n in (tg_docs | dc_docs).items():
        assert n == 1 and content == stored[sid], (recipient, sid)
    assert sorted(stored) == sorted(buyers.of)
    assert got.status_code == 200 and got.text == stored[bought], got.text[:300]

    # nothing of a transcript on the bots machine; each Space's audio on exactly one worker
    assert list(dirs["bots"].rglob("transcript.*")) == []
    assert list(dirs["bots"].rglob("audio.m4a")) == []
    assert list((tmp_path / "data").rglob("transcript.*")) == []  # the buyers' process
    where = {
        sid: [
            w
            for w in ("worker-1", "worker-2")
            if (dirs[w] / "data" / "spaces" / sid / "audio.m4a").is_file()
        ]
        for sid in buyers.of
    }
    assert all(len(w) == 1 for w in where.values()), where
    per_worker = Counter(w[0] for w in where.values())
    assert set(per_worker) == {"worker-1", "worker-2"}, per_worker
    assert len(workers) == 2
    record(
        "machines",
        f"3 processes, 3 data dirs, 1 PostgreSQL: {len(buyers.of)} Spaces "
        f"({per_worker['worker-1']} + {per_worker['worker-2']} per worker), "
        f"{sum(expected.values())} DMs ({sum(tg_docs.values())} Telegram, "
        f"{sum(dc_docs.values())} Discord) delivered once from the database, "
        f"0 transcript files on the bots machine; {time.monotonic() - t0:.0f} s",
    )
