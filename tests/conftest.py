"""Shared fixtures: every database test runs on SQLite and on PostgreSQL.

PostgreSQL comes from ``SPACESCRIBE_TEST_PG_URL`` (default the local server); each test run
creates its own database (random name) and drops it at the end, so runs never collide.
With ``CI=true`` an unreachable PostgreSQL fails the run instead of skipping.
"""

from __future__ import annotations

import asyncio
import os
import shutil
import socket
from collections.abc import AsyncIterator, Iterator
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest
from sqlalchemy import text

from bot.wiring import wire
from core.config import Secrets, Settings, load_settings
from core.context import Context
from core.db import Base, Database
from core.db import migrate as m
from tests.pg_admin import create_scratch, drop_scratch, pg_admin

PG_URL = os.environ.get("SPACESCRIBE_TEST_PG_URL", "postgresql://postgres@127.0.0.1:5432/test")
IN_CI = os.environ.get("CI", "").lower() in ("1", "true", "yes")
ENGINES = ("sqlite", "postgresql")


@pytest.fixture(autouse=True, scope="session")
def _no_internet() -> Iterator[None]:
    """Any test that tries to reach beyond this machine fails loudly."""
    real = socket.create_connection
    real_connect = socket.socket.connect

    def _check(host: object) -> None:
        h = str(host)
        if not (h.startswith("127.") or h in ("localhost", "::1", "0.0.0.0") or h.startswith("/")):
            raise RuntimeError(f"test tried to reach the internet: {h}")

    def guarded(address, *a, **kw):  # type: ignore[no-untyped-def]
        _check(address[0])
        return real(address, *a, **kw)

    def guarded_connect(self, address):  # type: ignore[no-untyped-def]
        if isinstance(address, tuple):
            _check(address[0])
        return real_connect(self, address)

    socket.create_connection = guarded  # type: ignore[assignment]
    socket.socket.connect = guarded_connect  # type: ignore[method-assign]
    yield
    socket.create_connection = real  # type: ignore[assignment]
    socket.socket.connect = real_connect  # type: ignore[method-assign]


def _in_thread(fn, *args):  # type: ignore[no-untyped-def]
    """Run blocking set-up (which may call asyncio.run) outside any running event loop."""
    with ThreadPoolExecutor(1) as pool:
        return pool.submit(fn, *args).result()


def _pg_reachable() -> str | None:
    try:
        _in_thread(asyncio.run, pg_admin(PG_URL, "SELECT 1"))
        return None
    except Exception as exc:
        return f"{type(exc).__name__}: {exc}"


@pytest.fixture(scope="session")
def pg_database() -> Iterator[str]:
    """A fresh, migrated PostgreSQL database for this test run; dropped at the end."""
    why = _pg_reachable()
    if why:
        if IN_CI:
            pytest.fail(f"PostgreSQL at {PG_URL} is unreachable in CI: {why}")
        pytest.skip(f"PostgreSQL unreachable: {why}")
    url = _in_thread(asyncio.run, create_scratch(PG_URL, "spacescribe_t"))
    try:
        _in_thread(m.upgrade, url)
        yield url
    finally:
        _in_thread(asyncio.run, drop_scratch(PG_URL, url))


@pytest.fixture(scope="session")
def sqlite_template(tmp_path_factory: pytest.TempPathFactory) -> Path:
    path = tmp_path_factory.mktemp("sqlite-template") / "spaces.db"
    _in_thread(m.upgrade, f"sqlite:///{path}")
    return path


TABLES_IN_DELETE_ORDER = [t.name for t in reversed(Base.metadata.sorted_tables)]


async def _truncate_pg(url: str) -> None:
    db = Database(url)
    try:
        async with db.session() as s:
            names = ", ".join(f'"{t}"' for t in TABLES_IN_DELETE_ORDER)
            await s.execute(text(f"TRUNCATE {names} RESTART IDENTITY CASCADE"))
    finally:
        await db.dispose()


@pytest.fixture(params=ENGINES)
def db_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """A migrated, empty database URL: a new SQLite file, or the run's PostgreSQL emptied."""
    if request.param == "sqlite":
        path = tmp_path / "spaces.db"
        shutil.copy(request.getfixturevalue("sqlite_template"), path)
        return f"sqlite:///{path}"
    url = request.getfixturevalue("pg_database")
    _in_thread(asyncio.run, _truncate_pg(url))
    return url


def make_settings(db_url: str, data_dir: Path, **overrides: object) -> Settings:
    return load_settings(database={"url": db_url}, data_dir=data_dir, **overrides)


@pytest.fixture
def secrets() -> Secrets:
    """No secrets: tests never see the machine's environment tokens."""
    return Secrets.model_construct()


@pytest.fixture
async def ctx(db_url: str, tmp_path: Path, secrets: Secrets) -> AsyncIterator[Context]:
    settings = make_settings(db_url, tmp_path / "data")
    c = wire(Context(settings, secrets, Database(db_url), instance="test:1"))  # as a process
    try:
        yield c
    finally:
        await c.close()


@pytest.fixture
def fresh_pg_url(request: pytest.FixtureRequest) -> Iterator[str]:
    """A brand-new, EMPTY (unmigrated) PostgreSQL database, dropped after the test."""
    if _pg_reachable():
        request.getfixturevalue("pg_database")  # fails in CI, skips elsewhere
    url = _in_thread(asyncio.run, create_scratch(PG_URL, "spacescribe_f"))
    try:
        yield url
    finally:
        _in_thread(asyncio.run, drop_scratch(PG_URL, url))


# The local EVM chain (anvil + test token): fixtures `anvil`, `chain`, `fresh_payer`.
from tests.stand_ins.chain import anvil, chain, fresh_payer  # noqa: E402,F401


def pytest_configure(config: pytest.Config) -> None:
    """Under mutation testing every mutant is one short pytest session in a process forked
    after all imports: pytest's closing ``gc.collect()`` calls then walk those imported
    objects again each time (half a mutant's run). Freezing them skips that walk."""
    if os.environ.get("MUTANT_UNDER_TEST"):
        import gc

        gc.freeze()


def pytest_collection_modifyitems(config: pytest.Config, items: list[pytest.Item]) -> None:
    """Under mutation testing, a mutant's tests run fastest first (durations from mutmut's
    stats): a mutant is killed by its first failing test, so the slow end-to-end tests run
    only for the mutants the fast ones miss."""
    # only in a forked mutant's session: mutmut runs its stats, clean and forced-fail
    # sessions ("stats", "", "fail") in its own process, where a watchdog would end mutmut
    if "__mutmut_" not in os.environ.get("MUTANT_UNDER_TEST", ""):
        return
    import json

    stats = Path("mutmut-stats.json")  # mutmut runs the tests from mutants/
    if not stats.is_file():
        return
    took: dict[str, float] = json.loads(stats.read_text()).get("duration_by_test", {})
    items.sort(key=lambda item: took.get(item.nodeid, 0.0))
    # A mutant that makes a test wait (a lock never released, a poll never answered) costs no
    # CPU: each test gets ten times its clean run plus 5 s (at most PYTEST_TIMEOUT), so such
    # a mutant costs seconds, not minutes. Generous enough for a machine four times busier
    # than the clean run's; a timeout is reported apart from a kill.
    cap = float(os.environ.get("PYTEST_TIMEOUT", "30"))
    for item in items:
        item.add_marker(pytest.mark.timeout(min(cap, 10 * took.get(item.nodeid, cap) + 5)))
    # One that leaves a thread or a server waiting forever hangs the session after its
    # tests, where no per-test timeout reaches: a wall-clock allowance for the whole
    # session, then exit with mutmut's "timeout" code.
    import threading

    allowance = (sum(took.get(item.nodeid, 0.0) for item in items) + 1) * 5 + 30
    watchdog = threading.Timer(allowance, os._exit, args=(36,))
    watchdog.daemon = True
    watchdog.start()


def pytest_terminal_summary(terminalreporter: pytest.TerminalReporter) -> None:
    """Print what the drills measured (see tests/drills/figures.py)."""
    from tests.drills.figures import FIGURES

    if FIGURES:
        terminalreporter.section("drill figures")
        for drill, figures in FIGURES:
            terminalreporter.write_line(f"{drill:<12} {figures}")
