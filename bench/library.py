"""Quote for a completed Space (library first): p95 with X unreachable and with X reachable,
side by side in one run (target p95 ≤ 20 ms for both; X must not be asked either way).

``python -m bench.library [N]`` (default N = 200 quotes per side, each from a new member, on
SQLite). X is the test stand-in behind yt-dlp's networking layer (reachable), or a closed
port (unreachable); the production resolver (yt-dlp's real extractor) is in place.
"""

from __future__ import annotations

import asyncio
import sys
import tempfile
import time
from pathlib import Path

from core.config import Secrets, load_settings
from core.context import Context
from core.db import Database
from core.db.migrate import upgrade
from core.results import Caller, Quote
from core.service.purchases import request_transcription
from tests.factories import completed_space

SID = "1LibraryBench"
PAY_TO = "0x" + "9" * 40


def pct(values: list[float], q: float) -> float:
    s = sorted(values)
    return s[min(len(s) - 1, int(round(q * (len(s) - 1))))]


async def _quotes(ctx: Context, n: int, first_user: int) -> list[float]:
    out = []
    for i in range(n):
        caller = Caller("telegram", str(first_user + i), f"member {i}")
        t0 = time.perf_counter()
        q = await request_transcription(ctx, caller, SID)
        out.append((time.perf_counter() - t0) * 1000)
        assert isinstance(q, Quote), q
    return out


async def run(n: int) -> None:
    from tests.stand_ins.audio import make_hls, tone_wav
    from tests.stand_ins.x_spaces import XSpace, x_stand_in, x_unreachable

    with tempfile.TemporaryDirectory() as tmp:
        root = Path(tmp)
        url = f"sqlite:///{root}/bench.db"
        await asyncio.to_thread(upgrade, url)
        settings = load_settings(
            database={"url": url}, data_dir=root / "data", payments={"pay_to": PAY_TO}
        )
        ctx = Context(settings, Secrets.model_construct(), Database(url), instance="bench")
        async with ctx.db.session() as s:
            s.add(completed_space(SID))
        hls = root / "hls"
        make_hls(tone_wav(4, root / "t.wav"), hls / "space")
        # a fresh context: ctx.wiring.resolver is None, the production one (yt-dlp, X Spaces)
        try:
            await _quotes(ctx, 20, 1)  # warm-up
            async with x_stand_in(hls) as x:
                x.add(XSpace(SID))
                reachable = await _quotes(ctx, n, 10_000)
                asked = x.graphql_calls()
            async with x_unreachable():
                unreachable = await _quotes(ctx, n, 20_000)
        finally:
            await ctx.close()
    print(f"quote for a completed Space, {n} members each side (SQLite):")
    for name, v in (("X reachable", reachable), ("X unreachable", unreachable)):
        print(f"  {name:14s} p50 {pct(v, 0.5):6.2f} ms   p95 {pct(v, 0.95):6.2f} ms")
    ratio = pct(unreachable, 0.95) / pct(reachable, 0.95)
    print(f"  p95 unreachable / reachable = {ratio:.2f}; X asked {asked} times (must be 0)")


def main() -> None:
    n = int(sys.argv[1]) if len(sys.argv) > 1 and sys.argv[1].isdigit() else 200
    asyncio.run(run(n))


if __name__ == "__main__":
    main()
