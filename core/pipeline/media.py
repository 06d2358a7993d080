"""Space metadata and audio download with yt-dlp, behind an injectable resolver.

Only X/Twitter Space URLs rebuilt from a validated id ever reach yt-dlp in production
(:class:`XSpacesResolver`); tests inject a resolver that points the same yt-dlp code at a
local HLS server.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import TYPE_CHECKING, Any, Protocol

from core.pipeline import xspaces
from core.pipeline.errors import PipelineError
from core.pipeline.ffmpeg import ffmpeg_exe, run
from core.pipeline.storage import DOWNLOAD_DIR
from core.pipeline.xspaces import Outcome
from core.spaces import canonical_url, validate_id

if TYPE_CHECKING:
    from core.context import Context


@dataclass(frozen=True)
class SpaceMeta:
    space_id: str
    title: str
    creator: str | None
    started_at: datetime | None
    duration_seconds: float | None
    live: bool
    replay_available: bool
    media_url: str  # what yt-dlp downloads
    speakers: tuple[str, ...] = ()  # host, co-hosts and speakers X lists (display names)
    outcome: Outcome | None = None  # None: derived from ``live`` / ``replay_available``

    @property
    def state(self) -> Outcome:
        if self.outcome is not None:
            return self.outcome
        if self.live:
            return Outcome.LIVE
        return Outcome.READY if self.replay_available else Outcome.NO_REPLAY

    @property
    def started_ts(self) -> float | None:
        return self.started_at.replace(tzinfo=UTC).timestamp() if self.started_at else None


class MediaResolver(Protocol):
    async def resolve(self, space_id: str) -> SpaceMeta: ...


def _ydl_opts(cookies_file: str = "") -> dict[str, Any]:
    opts: dict[str, Any] = {
        "quiet": True,
        "no_warnings": True,
        "noprogress": True,
        "socket_timeout": 30,
        "retries": 5,
        "fragment_retries": 10,
        "concurrent_fragment_downloads": 8,
        "ffmpeg_location": ffmpeg_exe(),
        "noplaylist": True,
    }
    if cookies_file:
        opts["cookiefile"] = cookies_file
    return opts


def _short(err: Exception) -> str:
    text = str(err).replace("ERROR: ", "").strip()
    return text.splitlines()[0][:200] if text else type(err).__name__


SPEAKERS_PREFIX = "Twitter Space participated by "  # how yt-dlp's extractor lists them


def x_speakers(description: Any) -> tuple[str, ...]:
    """The speakers yt-dlp read from X (admins and speakers, joined with ", ")."""
    if not isinstance(description, str) or not description.startswith(SPEAKERS_PREFIX):
        return ()
    rest = description.removeprefix(SPEAKERS_PREFIX).strip()
    if rest == "nobody yet":
        return ()
    names = [" ".join(n.split())[:80] for n in rest.split(", ")]
    return tuple(dict.fromkeys(n for n in names if n))[:50]


def meta_from_info(
    space_id: str, info: dict[str, Any], media_url: str, warnings: list[str] | None = None
) -> SpaceMeta:
    live_status = info.get("live_status")
    # release_timestamp: started_at, or scheduled_start while the Space is upcoming
    ts = info.get("release_timestamp") or info.get("timestamp")
    outcome = xspaces.outcome_of_info(info, warnings or [])
    return SpaceMeta(
        space_id=space_id,
        title=str(info.get("title") or f"X Space {space_id}")[:300],
        creator=info.get("uploader_id") or info.get("uploader"),
        started_at=datetime.fromtimestamp(ts, UTC).replace(tzinfo=None) if ts else None,
        duration_seconds=float(info["duration"]) if info.get("duration") else None,
        live=live_status in ("is_live", "is_upcoming"),
        replay_available=outcome is Outcome.READY,
        media_url=media_url,
        outcome=outcome,
        # the host is the creator already (by handle); X lists them by display name too
        speakers=tuple(s for s in x_speakers(info.get("description")) if s != info.get("uploader")),
    )


class XSpacesResolver:
    """Production: yt-dlp's X (Twitter) Spaces extractor on the canonical URL."""

    def __init__(self, cookies_file: str = "") -> None:
        self.cookies_file = cookies_file

    async def resolve(self, space_id: str) -> SpaceMeta:
        url = canonical_url(validate_id(space_id))
        info, warnings = await asyncio.to_thread(extract_info, url, self.cookies_file)
        return meta_from_info(space_id, info, url, warnings)


class _Warnings:
    """yt-dlp's logger: keeps the warnings (they carry "no formats" outcomes), drops the rest."""

    def __init__(self) -> None:
        self.warnings: list[str] = []

    def debug(self, msg: str) -> None: ...

    def info(self, msg: str) -> None: ...

    def warning(self, msg: str) -> None:
        self.warnings.append(msg)

    def error(self, msg: str) -> None: ...


def extract_info(url: str, cookies_file: str = "") -> tuple[dict[str, Any], list[str]]:
    """yt-dlp's metadata for a Space and its warnings; raises the pipeline error of any
    outcome that is not an answer (see :mod:`core.pipeline.xspaces`)."""
    import yt_dlp

    log = _Warnings()
    opts = {
        **_ydl_opts(cookies_file),
        "skip_download": True,
        # "not started", "replay disabled", "not downloadable yet" come back as a result
        # (live_status, no formats, a warning) instead of an error with only a message
        "ignore_no_formats_error": True,
        "logger": log,
    }
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            info = ydl.extract_info(url, download=False)
    except yt_dlp.utils.DownloadError as e:
        outcome, detail = xspaces.outcome_of_error(e, logged_in=bool(cookies_file))
        raise xspaces.error_for(outcome, detail) from None
    xspaces.note_answered()
    return dict(info or {}), log.warnings


def availability_problem(meta: SpaceMeta) -> str | None:
    """Why the Space cannot be downloaded now, in user words; None if it can."""
    if meta.state is Outcome.READY:
        return None
    return xspaces.USER_TEXT[meta.state]


def _download_sync(url: str, workdir: Path, cookies_file: str) -> Path:
    import yt_dlp

    opts = {
        **_ydl_opts(cookies_file),
        "format": "bestaudio/best",
        "outtmpl": str(workdir / "download.%(ext)s"),
    }
    try:
        with yt_dlp.YoutubeDL(opts) as ydl:
            ydl.download([url])
    except yt_dlp.utils.DownloadError as e:
        raise PipelineError(f"downloading the Space's audio failed ({_short(e)})") from None
    files = [
        p
        for p in workdir.iterdir()
        if p.name.startswith("download.") and not p.name.endswith((".part", ".ytdl"))
    ]
    if not files:
        raise PipelineError("downloading the Space's audio produced no file")
    return files[0]


async def download(meta: SpaceMeta, target: Path, cookies_file: str = "") -> Path:
    """Download to a temporary directory beside ``target``, remux to m4a, rename into place.
    An existing ``target`` is complete (it only ever appears by rename) and is reused.

    Each attempt downloads into a directory of its own: a worker too starved to renew its
    lease may still be downloading when the job's next attempt starts, and neither may delete
    the other's files (whichever renames last puts the same audio in place)."""
    if target.exists():
        return target
    target.parent.mkdir(parents=True, exist_ok=True)
    work = Path(tempfile.mkdtemp(prefix=f"{DOWNLOAD_DIR}-", dir=target.parent))
    try:
        got = await asyncio.to_thread(_download_sync, meta.media_url, work, cookies_file)
        tmp = work / "audio.m4a"
        await run("-v", "error", "-y", "-i", str(got), "-vn", "-c:a", "copy", "-f", "mp4", str(tmp))
        tmp.replace(target)
    finally:
        shutil.rmtree(work, ignore_errors=True)
    return target


def resolver(ctx: Context) -> MediaResolver:
    """The one the wiring set (``ctx.wiring.resolver``: tests, drills), else X's."""
    return ctx.wiring.resolver or XSpacesResolver(ctx.settings.transcription.cookies_file)
