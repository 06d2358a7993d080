"""CPU per status read, in-process: what ``GET /api/spaces/<id>`` costs the web process.

The app (``bot.wiring.web_app``) is driven by plain ASGI calls, no network and no client, 50
requests in flight over 1,000 completed Spaces, on SQLite and PostgreSQL side by side; the
figure is ``time.process_time`` per request (this process only: PostgreSQL's own server
processes are not counted), so the machine's other load matters less than for
``python -m bench http``. Measured for each engine, in alternating rounds:

- ``GET /healthz``: the web stack alone (FastAPI, routing, middleware, JSON), no database;
- ``SELECT 1`` in ``db.read()``: a read transaction with the least statement in it;
- ``catalog.status``: the status read in the core, no HTTP;
- ``GET /api/spaces/<id>``: the whole route.

``BENCH_READCPU_BASE=<git ref>`` measures that ref's tree too (exported with ``git archive``,
each tree in a process of its own, rounds alternating) and prints this tree / that one.
Environment: SPACESCRIBE_TEST_PG_URL, BENCH_READCPU_REQUESTS (per round, default 2,000),
BENCH_READCPU_ROUNDS (5), BENCH_READCPU_PROFILE=1 (instead: cProfile of the route on SQLite,
the event loop's thread's CPU).
"""

from __future__ import annotations

import asyncio
import json
import os
import random
import statistics
import subprocess
import sys
import tempfile
import time
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import Any

from bench.http import SPACES, _fill, sid  # the same 1,000 completed Spaces

ROOT = Path(__file__).resolve().parents[1]
IN_FLIGHT = 50
REQUESTS = int(os.environ.get("BENCH_READCPU_REQUESTS", "2000"))
ROUNDS = int(os.environ.get("BENCH_READCPU_ROUNDS", "5"))
PG_URL = os.environ.get("SPACESCRIBE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
KINDS = ("GET /healthz", "SELECT 1 in db.read()", "catalog.status", "GET /api/spaces/<id>")
ENGINES = ("sqlite", "postgresql")


async def _asgi_get(app: Any, path: str) -> int:
    """One GET through the app as an ASGI server would make it; the response status."""
    scope = {
        "type": "http",
        "asgi": {"version": "3.0", "spec_version": "2.3"},
        "http_version": "1.1",
        "method": "GET",
        "scheme": "http",
        "path": path,
        "raw_path": path.encode(),
        "root_path": "",
        "query_string": b"",
        "headers": [(b"host", b"bench"), (b"accept", b"*/*")],
        "client": ("127.0.0.1", 50000),
        "server": ("127.0.0.1", 8000),
        "state": {},
    }
    status = 0

    async def receive() -> dict[str, Any]:
        return {"type": "http.request", "body": b"", "more_body": False}

    async def send(message: dict[str, Any]) -> None:
        nonlocal status
        if message["type"] == "http.response.start":
            status = message["status"]

    await app(scope, receive, send)
    return status


async def _cpu_per_call(one: Callable[[int], Awaitable[None]], n: int) -> float:
    """CPU milliseconds per call of ``one``, ``n`` calls with IN_FLIGHT at a time."""
    it = iter(range(n))

    async def lane() -> None:
        for i in it:
            await one(i)

    c0 = time.process_time()
    await asyncio.gather(*(lane() for _ in range(IN_FLIGHT)))
    return (time.process_time() - c0) * 1000 / n


def _calls(ctx: Any, app: Any) -> dict[str, Callable[[int], Awaitable[None]]]:
    from sqlalchemy import text

    from core.service import catalog

    rng = random.Random(11)
    ids = [sid(rng.randrange(SPACES)) for _ in range(REQUESTS)]

    async def healthz(i: int) -> None:
        assert await _asgi_get(app, "/healthz") == 200

    async def select_1(i: int) -> None:
        async with ctx.db.read() as s:
            await s.execute(text("SELECT 1"))

    async def status(i: int) -> None:
        assert not isinstance(await catalog.status(ctx, ids[i]), catalog.Refused)

    async def route(i: int) -> None:
        assert await _asgi_get(app, f"/api/spaces/{ids[i]}") == 200

    return dict(zip(KINDS, (healthz, select_1, status, route), strict=True))


async def _measure(urls: dict[str, str], data_dir: Path, rounds: int) -> dict[str, Any]:
    """{engine: {kind: [ms per round]}} for this process's tree."""
    from bot.wiring import web_app, wire
    from core.config import Secrets, load_settings
    from core.context import Context
    from core.db import Database

    out: dict[str, dict[str, list[float]]] = {e: {k: [] for k in KINDS} for e in urls}
    apps = {}
    for engine, url in urls.items():
        settings = load_settings(database={"url": url}, data_dir=data_dir / engine)
        ctx = wire(Context(settings, Secrets.model_construct(), Database(url), instance="b:1"))
        apps[engine] = ctx, _calls(ctx, web_app(ctx))
        for call in apps[engine][1].values():  # warm: connections, compiled statements
            await _cpu_per_call(call, 200)
    try:
        for _ in range(rounds):
            for engine, (_ctx, calls) in apps.items():
                for kind, call in calls.items():
                    out[engine][kind].append(await _cpu_per_call(call, REQUESTS))
    finally:
        for ctx, _ in apps.values():
            await ctx.close()
    return out


async def _profile(url: str, data_dir: Path) -> None:
    import cProfile
    import pstats

    from bot.wiring import web_app, wire
    from core.config import Secrets, load_settings
    from core.context import Context
    from core.db import Database

    settings = load_settings(database={"url": url}, data_dir=data_dir)
    ctx = wire(Context(settings, Secrets.model_construct(), Database(url), instance="b:1"))
    route = _calls(ctx, web_app(ctx))["GET /api/spaces/<id>"]
    await _cpu_per_call(route, 200)
    prof = cProfile.Profile(time.thread_time)  # CPU of this thread: not aiosqlite's
    prof.enable()
    await _cpu_per_call(route, REQUESTS)
    prof.disable()
    await ctx.close()
    pstats.Stats(prof).sort_stats("tottime").print_stats(40)
    pstats.Stats(prof).sort_stats("cumulative").print_stats(60)


def _worker() -> None:
    """One tree's measurement (run in a process of its own): JSON on stdout."""
    urls, data_dir = json.loads(sys.argv[2]), Path(sys.argv[3])
    import bot.wiring

    if not Path(bot.wiring.__file__).resolve().is_relative_to(Path.cwd().resolve()):
        raise RuntimeError(f"measuring {Path.cwd()} imported {bot.wiring.__file__}")
    print(json.dumps(asyncio.run(_measure(urls, data_dir, 1))))


def _in_process(tree: Path, urls: dict[str, str], data_dir: Path) -> dict[str, Any]:
    code = (
        "import runpy, sys; "
        f"sys.argv = ['readcpu', '--worker', {json.dumps(urls)!r}, {str(data_dir)!r}]; "
        f"runpy.run_path({str(Path(__file__).resolve())!r}, run_name='__main__')"
    )
    env = {**os.environ, "PYTHONPATH": str(tree)}
    done = subprocess.run(  # noqa: S603 (our own interpreter and file)
        [sys.executable, "-c", code], cwd=tree, env=env, capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"measuring {tree} failed:\n{done.stderr[-3000:]}")
    result: dict[str, Any] = json.loads(done.stdout.strip().splitlines()[-1])
    return result


def _export(ref: str, into: Path) -> None:
    archive = subprocess.run(  # noqa: S603
        ["git", "-C", str(ROOT), "archive", ref], check=True, capture_output=True
    ).stdout
    subprocess.run(["tar", "-x", "-C", str(into)], input=archive, check=True)  # noqa: S603


def _report(results: dict[str, dict[str, Any]]) -> None:
    trees = list(results)
    print(
        f"{SPACES} completed Spaces, {IN_FLIGHT} in flight, {REQUESTS} requests a round, "
        f"{ROUNDS} rounds, load average {os.getloadavg()[0]:.1f}; CPU ms per request, median "
        "of the rounds (PostgreSQL's server processes not counted)"
    )
    cols = [f"{t} {e}" for t in trees for e in ENGINES] + ["sqlite/pg"]
    if len(trees) > 1:
        cols += [f"{trees[0]}/{trees[1]} {e}" for e in ENGINES]
    print(f"  {'':<22}" + "".join(f"{c:>22}" for c in cols))
    for kind in KINDS:
        cells = [statistics.median(results[t][e][kind]) for t in trees for e in ENGINES]
        ratios = [cells[0] / cells[1]]
        if len(trees) > 1:
            ratios += [cells[0] / cells[2], cells[1] / cells[3]]
        print(
            f"  {kind:<22}"
            + "".join(f"{c:22.3f}" for c in cells)
            + "".join(f"{r:22.2f}" for r in ratios)
        )
    print(f"  each round, {KINDS[-1]}:")
    for t in trees:
        for e in ENGINES:
            print(f"    {t} {e:<11}" + " ".join(f"{ms:6.3f}" for ms in results[t][e][KINDS[-1]]))


async def _prepare(tmp: Path) -> dict[str, str]:
    from tests.pg_admin import create_scratch

    lite = f"sqlite:///{tmp}/bench.db"
    await _fill(lite)
    pg = await create_scratch(PG_URL, "bench_readcpu")
    await _fill(pg)
    return {"sqlite": lite, "postgresql": pg}


def run() -> None:
    from tests.pg_admin import drop_scratch

    base = os.environ.get("BENCH_READCPU_BASE")
    with tempfile.TemporaryDirectory() as name:
        tmp = Path(name)
        urls = asyncio.run(_prepare(tmp))
        try:
            if os.environ.get("BENCH_READCPU_PROFILE"):
                asyncio.run(_profile(urls["sqlite"], tmp / "profile"))
                return
            if not base:
                _report({"this": asyncio.run(_measure(urls, tmp, ROUNDS))})
                return
            (tmp / "base").mkdir()
            _export(base, tmp / "base")
            trees = {"this": ROOT, "base": tmp / "base"}
            results: dict[str, Any] = {
                t: {e: {k: [] for k in KINDS} for e in ENGINES} for t in trees
            }
            for _ in range(ROUNDS):  # alternate the trees so a change in load hits both
                for tree, path in trees.items():
                    one = _in_process(path, urls, tmp / tree)
                    for e in ENGINES:
                        for k in KINDS:
                            results[tree][e][k] += one[e][k]
            _report(results)
        finally:
            asyncio.run(drop_scratch(PG_URL, urls["postgresql"]))


def main(argv: list[str] | None = None) -> None:
    run()


if __name__ == "__main__":
    if sys.argv[1:2] == ["--worker"]:
        _worker()
    else:
        main()
