"""``spacescribe``: the one command-line entry point."""

from __future__ import annotations

import asyncio
import sys
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, TypeVar

import typer
from rich.console import Console
from rich.table import Table

from core.errors import SpacescribeError

if TYPE_CHECKING:
    from bot.runtime import StatusLine
    from bot.testmode import LocalChain
    from core.config import Secrets, Settings, TranscriptionSettings
    from core.context import Context
    from core.pipeline.render import TranscriptDoc
    from core.pipeline.run import Progress as PipelineProgress
    from core.pipeline.storage import SpaceFiles

T = TypeVar("T")

app = typer.Typer(
    help="spacescribe: X Spaces transcripts and AI chat, paid in USDC.",
    no_args_is_help=True,
    pretty_exceptions_enable=False,
)
console = Console()
err_console = Console(stderr=True)


def _context():  # type: ignore[no-untyped-def]
    from core import logging as slog
    from core.context import Context

    ctx = Context.create()
    s = ctx.settings.logging
    slog.configure(s.level, s.json_logs, [*ctx.secrets.values(), *ctx.settings.url_credentials()])
    return ctx


def _fail(msg: str, code: int = 2) -> None:
    err_console.print(f"[red]error:[/red] {msg}")
    raise typer.Exit(code)


def _space_ids(spaces: list[str] | None) -> list[str] | None:
    """Space links or ids given on the command line, validated; None when none were given
    (the command then works on its default set)."""
    from core.spaces import parse_space

    try:
        return [parse_space(s) for s in spaces] if spaces else None
    except SpacescribeError as e:
        _fail(str(e))
        raise  # not reached: _fail exits


async def _with_context(work: Callable[[Context], Awaitable[T]]) -> T:
    """Run one piece of work with the application's context, closed afterwards."""
    ctx = _context()
    try:
        return await work(ctx)
    finally:
        await ctx.close()


@app.command()
def migrate(
    database_url: str = typer.Option(None, "--database-url", help="Override database.url"),
) -> None:
    """Upgrade the database to the newest schema (SQLite or PostgreSQL)."""
    from core.config import load_settings
    from core.db import migrate as m
    from core.db.engine import safe_url

    try:
        url = database_url or load_settings().database.url
        m.upgrade(url)
    except SpacescribeError as e:
        _fail(str(e))
    console.print(f"[green]migrated[/green] {safe_url(url)} to {m.head_revision()}")


@app.command()
def run(
    roles: str = typer.Option(
        "bots,web,scheduler,worker", "--roles", help="Comma-separated: bots, web, scheduler, worker"
    ),
    no_migrate: bool = typer.Option(False, "--no-migrate", help="Do not upgrade the schema first"),
) -> None:
    """Run the application: bots, web server, scheduler and worker (all by default).

    In test mode (no payments.pay_to) it also starts the local test chain (see README)."""
    from bot.runtime import parse_roles
    from core.db import migrate as m

    try:
        role_list = parse_roles(roles)
        ctx = _context()
    except (ValueError, SpacescribeError) as e:
        _fail(str(e))
    if not no_migrate:
        m.upgrade(ctx.settings.database.url)
    ctx, chain, problem = _test_chain(ctx, role_list)
    try:
        asyncio.run(_run_roles(ctx, role_list, chain, problem))
    except KeyboardInterrupt:
        pass
    finally:
        if chain is not None:
            chain.stop()


def _test_chain(
    ctx: Context, role_list: list[str]
) -> tuple[Context, LocalChain | None, str | None]:
    """In test mode, the local test chain and the context that pays on it; else the context
    as it was. The last item is why the chain is not in use: said on the Payments line, while
    the rest runs (a chain that started is stopped at the end even so)."""
    from bot import testmode

    if not testmode.needs_chain(ctx.settings, role_list):
        return ctx, None, None
    try:
        chain = testmode.start_test_chain(ctx.settings)
    except (RuntimeError, OSError, ValueError) as e:
        return ctx, None, str(e)
    try:
        return testmode.local_chain_context(ctx, chain), chain, None
    except (RuntimeError, OSError, ValueError) as e:
        return ctx, chain, str(e)


async def _run_roles(
    ctx: Context, role_list: list[str], chain: LocalChain | None, problem: str | None
) -> None:
    """Start the roles, say what runs, and run until stopped; the context is closed after."""
    from bot.runtime import Runtime

    try:
        rt = Runtime(ctx, role_list)
    except SpacescribeError as e:
        await ctx.close()
        _fail(str(e))
    for line in await _status_lines(ctx, rt.status, role_list, chain, problem):
        console.print(_status_text(line), soft_wrap=True)
    try:
        await rt.run_forever()
    except SpacescribeError as e:  # e.g. a bot token its platform refuses
        _fail(str(e))
    finally:
        await ctx.close()


async def _status_lines(
    ctx: Context,
    roles_status: list[StatusLine],
    role_list: list[str],
    chain: LocalChain | None,
    problem: str | None,
) -> list[StatusLine]:
    """What `run` says at start: each role, payments, transcripts copied in, the test chain."""
    from bot import testmode
    from bot.runtime import StatusLine

    label, why = testmode.payments_status(ctx, chain, problem)
    status = [*roles_status, StatusLine("Payments", label != "off", why, label)]
    if backfilled := await _backfill_line(ctx):
        status.append(backfilled)
    if chain is not None:
        status.append(StatusLine("Test chain", True, testmode.chain_line(chain)))
        if "web" in role_list:  # something to buy on a fresh machine, made once
            status.append(await testmode.demo_space_line(ctx))
    return status


async def _backfill_line(ctx: Context) -> StatusLine | None:
    """Copy in Spaces made before migration 0011, if this machine has their files: the line
    that says so, or why it could not; None when there was nothing to copy."""
    from bot.runtime import StatusLine
    from core import transcripts

    try:
        if copied := await transcripts.backfill(ctx):
            return StatusLine("Transcripts", True, _copied_line(copied))
    except Exception as e:  # the database is down: the roles wait for it, this says so
        why = f"could not copy local transcripts into the database ({type(e).__name__})"
        return StatusLine("Transcripts", False, why)
    return None


def _status_text(line: StatusLine) -> str:
    if line.label:
        return f"{line.name}: [bold]{line.label}[/bold] — {line.why}"
    mark = "[green]on[/green]" if line.on else "[yellow]off[/yellow]"
    return f"{line.name}: {mark}, {line.why}"


def _copied_line(space_ids: list[str]) -> str:
    shown = ", ".join(space_ids[:5]) + (", …" if len(space_ids) > 5 else "")
    return (
        f"{len(space_ids)} made before the database held them copied in from this machine ({shown})"
    )


@app.command()
def worker() -> None:
    """Run the processing worker only (same as ``run --roles worker``)."""
    run(roles="worker", no_migrate=False)


@app.command()
def mcp() -> None:
    """Serve the MCP tools on stdin/stdout (an agent's MCP client starts this command).

    The same tools answer over streamable HTTP at /mcp in the web role; paid tools use
    x402's MCP transport and the payment settings of ``config.toml`` (README "For agents")."""
    from adapters.mcp.server import build_server
    from bot.wiring import wire

    try:
        ctx = _context()  # logs go to stderr: stdout carries the protocol
    except SpacescribeError as e:
        _fail(str(e))
    if ctx.settings.payments.test_mode:  # the local chain belongs to `spacescribe run`
        err_console.print(
            "mcp: test mode (no payments.pay_to): paid tools answer payments_unavailable; "
            "use /mcp of `make run` to pay on its local chain"
        )
    wire(ctx)  # paid tools answer before settlement
    server = build_server(ctx)

    async def main() -> None:
        try:
            await server.run_stdio_async()
        finally:
            await ctx.close()

    try:
        asyncio.run(main())
    except KeyboardInterrupt:
        pass


@app.command()
def doctor(
    roles: str = typer.Option(
        None, "--roles", help="Check only what these roles need (e.g. worker); default all"
    ),
) -> None:
    """Check configuration, database, data directory and tools; print fixes."""
    from bot.doctor import run_checks
    from bot.runtime import parse_roles

    try:
        rows = asyncio.run(run_checks(parse_roles(roles) if roles is not None else None))
    except (ValueError, SpacescribeError) as e:
        _fail(str(e))
    table = Table(title="spacescribe doctor")
    table.add_column("check")
    table.add_column("result")
    table.add_column("detail / fix")
    bad = 0
    for name, ok, detail in rows:
        bad += ok is False
        mark = (
            "[green]ok[/green]"
            if ok
            else ("[yellow]off[/yellow]" if ok is None else "[red]problem[/red]")
        )
        table.add_row(name, mark, detail)
    console.print(table)
    raise typer.Exit(1 if bad else 0)


@app.command()
def revenue(
    period: str = typer.Option("week", "--period", help="day, week, month or all"),
    chart: Path = typer.Option(None, "--chart", help="Write a PNG chart of revenue per day here"),
) -> None:
    """Revenue by product (exact), counts, paying users, refunds, costs and margin; USDC and
    Telegram Stars in separate tables."""
    from bot.render import revenue_table, stars_table
    from core.results import Refused, RevenueReport
    from core.service.revenue import build_report

    ctx = _context()

    async def main() -> RevenueReport | Refused:
        try:
            return await build_report(ctx, period, chart=chart is not None)
        finally:
            await ctx.close()

    rep = asyncio.run(main())
    if isinstance(rep, Refused):
        _fail(rep.message)
        return
    console.print(revenue_table(rep))
    console.print(stars_table(rep))
    if chart is not None and rep.chart_png:
        chart.write_bytes(rep.chart_png)
        console.print(f"chart written to {chart}")


def _looks_like_a_link(source: str) -> bool:
    s = source.strip().lower()
    return "://" in s or s.startswith(("x.com/", "twitter.com/", "www.x.com/", "mobile.x.com/"))


@app.command()
def transcribe(
    source: str = typer.Argument(..., help="A Space link or id, or an audio file"),
    backend: str = typer.Option(
        None, "--backend", help="openai or offline (default: transcription.backend)"
    ),
    model: str = typer.Option(
        None,
        "--model",
        help="offline: tiny.en or base; openai: whisper-1, gpt-4o-transcribe, "
        "gpt-4o-mini-transcribe, gpt-4o-transcribe-diarize",
    ),
    language: str = typer.Option(
        None, "--language", help="ISO 639-1 code such as en or de (default: detect; tiny.en: en)"
    ),
) -> None:
    """Transcribe a Space or an audio file locally (no payment, no bot)."""
    import shutil

    from core.pipeline.errors import PipelineError

    chosen = _transcribe_settings(backend, model, language)
    if isinstance(chosen, str):
        _fail(chosen)
        return
    settings, secrets = chosen
    src = _transcribe_source(source)
    if isinstance(src, str):
        _fail(src)
        return
    created: list[Path] = []  # a folder this run made is removed again if the run fails
    try:
        asyncio.run(_transcribe_locally(settings, secrets, src, created))
    except BaseException as e:
        for folder in created:
            shutil.rmtree(folder, ignore_errors=True)
        if isinstance(e, PipelineError | SpacescribeError):
            _fail(str(e))
        raise


def _transcribe_settings(
    backend: str | None, model: str | None, language: str | None
) -> tuple[Settings, Secrets] | str:
    """The settings with ``transcribe``'s options applied, or why the options are refused."""
    from pydantic import ValidationError

    from core.config import load_secrets, load_settings
    from core.pipeline.transcribe import backend_name, whisper_model

    try:
        settings, secrets = load_settings(), load_secrets()
        t = settings.transcription
        if overrides := _transcription_overrides(t, secrets, backend, model, language):
            t = type(t).model_validate({**t.model_dump(), **overrides})
            settings.transcription = t
        if backend_name(t, secrets) == "offline":
            whisper_model.check_language(t.offline_model, t.language or None)
    except ValidationError as e:
        first = e.errors()[0]
        field = ".".join(str(x) for x in first["loc"])
        return f"--{field.replace('offline_model', 'model')}: {first['msg']}"
    except SpacescribeError as e:
        return str(e)
    return settings, secrets


def _transcription_overrides(
    t: TranscriptionSettings,
    secrets: Secrets,
    backend: str | None,
    model: str | None,
    language: str | None,
) -> dict[str, object]:
    """``transcribe``'s options as transcription settings (``--model`` names the model of the
    backend in use)."""
    from core.pipeline.transcribe import backend_name

    overrides: dict[str, object] = {}
    if backend is not None:
        overrides["backend"] = backend
    if language is not None:
        overrides["language"] = language.strip().lower()
    if model is not None:
        chosen = backend or backend_name(t, secrets)
        overrides["offline_model" if chosen == "offline" else "model"] = model
    return overrides


@dataclass(frozen=True)
class _Source:
    """What ``transcribe`` reads: an audio file, or a Space (``space_id``)."""

    path: Path
    space_id: str | None = None


def _transcribe_source(source: str) -> _Source | str:
    """The audio file or Space ``source`` names, or why it cannot be transcribed."""
    from core.pipeline import local
    from core.spaces import parse_space

    path = Path(source).expanduser()
    if path.exists():
        problem = asyncio.run(local.file_problem(path))
        return problem if problem else _Source(path)
    try:
        return _Source(path, parse_space(source))
    except SpacescribeError as e:
        return str(e) if _looks_like_a_link(source) else f"file not found: {path}"


@dataclass(frozen=True)
class _Audio:
    """A source's audio in its Space folder, and what its transcript says about it."""

    files: SpaceFiles
    title: str
    creator: str | None = None
    started_at: datetime | None = None
    url: str | None = None


async def _transcribe_locally(
    settings: Settings, secrets: Secrets, src: _Source, created: list[Path]
) -> SpaceFiles:
    """Transcribe ``src`` into its Space folder, with the overview, saying what was written.
    A Space folder this makes is added to ``created`` before anything is written in it."""
    from bot.progress import RichProgress
    from core.pipeline.run import transcribe_audio

    with RichProgress(console) as progress:
        if src.space_id is None:
            audio = await _import_file(settings, src.path, progress, created)
        else:
            audio = await _download_space(settings, secrets, src.space_id, progress, created)
        result = await transcribe_audio(
            settings,
            secrets,
            audio.files,
            title=audio.title,
            creator=audio.creator,
            started_at=audio.started_at,
            url=audio.url,
            progress=progress,
        )
    doc = result.doc
    console.print(
        f"[green]done[/green]: {len(doc.segments)} segments, "
        f"{doc.duration_seconds / 60:.1f} min, backend {doc.backend}"
    )
    files = audio.files
    console.print(await _overview(settings, secrets, doc, files))
    console.print(f"  {files.markdown}\n  {files.json}\n  {files.srt}\n  {files.vtt}")
    return files


def _space_folder(settings: Settings, space_id: str, created: list[Path]) -> SpaceFiles:
    """A Space's folder, noted in ``created`` if it does not exist yet."""
    from core.pipeline.storage import SpaceFiles

    files = SpaceFiles.of(settings.spaces_dir, space_id)
    if not files.root.exists():
        created.append(files.root)
    return files


async def _import_file(
    settings: Settings, path: Path, progress: PipelineProgress, created: list[Path]
) -> _Audio:
    from core.pipeline import local

    files = _space_folder(settings, local.local_id(path), created)
    progress.stage("import")
    await local.import_audio(path, files)
    return _Audio(files, path.stem, url=path.resolve().as_uri())


async def _download_space(
    settings: Settings,
    secrets: Secrets,
    space_id: str,
    progress: PipelineProgress,
    created: list[Path],
) -> _Audio:
    from core.context import Context
    from core.pipeline import media
    from core.pipeline.run import resolve_space

    ctx = Context.create(settings, secrets)
    try:
        progress.stage("metadata")
        meta = await resolve_space(ctx, space_id)
    finally:
        await ctx.close()
    files = _space_folder(settings, meta.space_id, created)
    progress.stage("download")
    await media.download(meta, files.audio, settings.transcription.cookies_file)
    return _Audio(files, meta.title, meta.creator, meta.started_at)


async def _overview(
    settings: Settings, secrets: Secrets, doc: TranscriptDoc, files: SpaceFiles
) -> str:
    """Write the overview too (no database here: files only) and say what it holds; a
    failure leaves the transcript as it is and says why."""
    from core.context import Context
    from core.enrich.service import compute, write_files
    from core.enrich.structured import EnrichmentFailed

    ectx = Context.create(settings, secrets)
    try:
        segs = [s.to_json() for s in doc.segments]
        enrichment = await compute(ectx, segs, doc.duration_seconds)
        write_files(files, enrichment)
        return (
            f"overview ({enrichment.method}): {len(enrichment.takeaways)} takeaways, "
            f"{len(enrichment.chapters)} chapters, {len(enrichment.quotes)} quotes"
        )
    except EnrichmentFailed as e:
        return f"[yellow]no overview: {e}[/yellow]"
    finally:
        await ectx.close()


def _started_at(raw: str | None) -> datetime | None:
    """``--started-at``: ISO 8601; a time without an offset is UTC. Stored naive UTC."""
    if raw is None:
        return None
    try:
        when = datetime.fromisoformat(raw.strip())
    except ValueError:
        _fail(
            "--started-at must be an ISO 8601 date and time, "
            f"e.g. 2026-11-30T18:00 or 2026-11-30T18:00+01:00 (got {raw[:40]!r})"
        )
        raise
    return when.astimezone(UTC).replace(tzinfo=None) if when.tzinfo else when


@app.command("import")
def import_(
    space: str = typer.Argument(..., help="The Space's link or id"),
    audio: Path = typer.Argument(..., help="Its recording: any audio file ffmpeg reads"),
    title: str = typer.Option(None, "--title", help="The Space's title (kept on its row)"),
    creator: str = typer.Option(None, "--creator", help="The host's X handle"),
    started_at: str = typer.Option(
        None, "--started-at", help="When the Space started, ISO 8601 (UTC unless an offset)"
    ),
    force: bool = typer.Option(
        False, "--force", help="Replace the transcript of a Space that is already completed"
    ),
    background: bool = typer.Option(
        False, "--background", help="Only queue the job: the running worker transcribes it"
    ),
) -> None:
    """Import a recording X cannot give (replay disabled, expired, refused): the file is
    checked, becomes the Space's audio and runs the same job as a download; payers waiting
    on the Space are served."""
    from core.db import migrate as m
    from core.service.imports import Imported, Metadata, import_recording

    if title is not None and not 0 < len(title.strip()) <= 300:
        _fail("--title must be 1 to 300 characters")
    if creator is not None and not 0 < len(creator.strip().lstrip("@")) <= 100:
        _fail("--creator must be 1 to 100 characters")
    meta = Metadata(
        title=title.strip() if title else None,
        creator=creator.strip().lstrip("@") if creator else None,
        started_at=_started_at(started_at),
    )
    try:
        ctx = _context()
        m.upgrade(ctx.settings.database.url)  # a fresh machine: the schema first
    except SpacescribeError as e:
        _fail(str(e))
        return

    async def main() -> int:
        from bot.wiring import wire
        from core.results import Refused
        from core.worker import Worker

        try:
            out = await import_recording(ctx, None, space, audio, meta=meta, force=force)
            if isinstance(out, Refused):
                _fail(out.message)
            assert isinstance(out, Imported)
            v = out.space
            made = "new Space row" if out.created else "known Space"
            console.print(
                f"[green]imported[/green] {v.space_id} ({made}): {v.title}, "
                f"{out.duration_seconds / 60:.1f} min; {out.payers} payer(s) waiting"
            )
            if background:
                console.print("queued: the running worker transcribes it")
                return 0
            ran = await Worker(wire(ctx)).run_space(v.space_id)  # index, enrich on completion
            async with ctx.db.read() as s:
                from core.service.catalog import find_space

                row = await find_space(s, v.space_id)
            status = row.status if row is not None else "gone"
            if not ran:
                console.print(f"a running worker took the job (status: {status})")
                return 0
            if status != "completed":
                error = row.error_message if row is not None else ""
                err_console.print(f"[red]error:[/red] the job did not complete ({status}): {error}")
                return 1
            console.print(
                f"[green]done[/green]: transcript of {v.space_id} ready; "
                f"{out.payers} payer(s) will receive it"
            )
            return 0
        finally:
            await ctx.close()

    code = asyncio.run(main())
    raise typer.Exit(code)


@app.command("chat-index")
def chat_index(
    spaces: list[str] = typer.Argument(
        None, help="Space links or ids (default: every completed Space without a chat index)"
    ),
    force: bool = typer.Option(False, "--force", help="Re-index Spaces already indexed"),
) -> None:
    """Build the chat passage index of completed Spaces from their transcript.json."""
    from core.chat.backfill import backfill

    ids = _space_ids(spaces)

    async def main() -> None:
        report = await _with_context(lambda ctx: backfill(ctx, ids, force=force))
        for sid, n in report.indexed.items():
            console.print(f"{sid}: {n} passages")
        for sid in report.missing:
            console.print(f"[yellow]{sid}: no transcript.json, not indexed[/yellow]")
        console.print(f"indexed {len(report.indexed)} Space(s)")
        if report.missing:
            raise typer.Exit(1)

    asyncio.run(main())


@app.command("enrich")
def enrich(
    spaces: list[str] = typer.Argument(
        None, help="Space links or ids (default: every completed Space without an enrichment)"
    ),
    force: bool = typer.Option(False, "--force", help="Enrich again Spaces already enriched"),
) -> None:
    """Add summary, chapters, verified quotes and subtitles to completed Spaces."""
    from core.enrich.service import backfill

    ids = _space_ids(spaces)

    async def main() -> None:
        report = await _with_context(lambda ctx: backfill(ctx, ids, force=force))
        for sid, method in report.enriched.items():
            console.print(f"{sid}: enriched ({method})")
        for sid in report.skipped:
            console.print(f"{sid}: already enriched (--force to redo)")
        for sid in report.missing:
            console.print(f"[yellow]{sid}: no transcript.json, not enriched[/yellow]")
        for sid, why in report.failed.items():
            console.print(f"[red]{sid}: failed: {why}[/red]")
        if ids is not None:
            unknown = set(ids) - {
                *report.enriched,
                *report.skipped,
                *report.missing,
                *report.failed,
            }
            for sid in sorted(unknown):
                console.print(f"[yellow]{sid}: not a completed Space here[/yellow]")
        console.print(f"enriched {len(report.enriched)} Space(s)")
        if report.missing or report.failed:
            raise typer.Exit(1)

    asyncio.run(main())


db_app = typer.Typer(help="Database tools.", no_args_is_help=True)
app.add_typer(db_app, name="db")


@db_app.command("copy")
def db_copy(
    source: str = typer.Option(
        ..., "--from", help="Source URL, e.g. sqlite:///data/database/spaces.db"
    ),
    target: str = typer.Option(..., "--to", help="Target URL, e.g. postgresql://user@host/db"),
    overwrite: bool = typer.Option(False, "--overwrite", help="Replace a non-empty target"),
) -> None:
    """Copy every table to another database (ids kept), then verify counts and checksums."""
    from core.db.copy import copy_database
    from core.db.engine import safe_url

    try:
        report = asyncio.run(copy_database(source, target, overwrite))
    except SpacescribeError as e:
        _fail(str(e))
        return
    table = Table(title=f"copied {safe_url(source)} → {safe_url(target)}")
    table.add_column("table")
    table.add_column("rows", justify="right")
    table.add_column("checksum (sha256, both sides)")
    for t in report:
        table.add_row(t.table, str(t.rows), t.checksum[:16])
    console.print(table)
    console.print("[green]verified[/green]: row counts and checksums match on every table")


def main() -> None:  # pragma: no cover - console script shim
    app()


if __name__ == "__main__":  # pragma: no cover
    sys.exit(app())
