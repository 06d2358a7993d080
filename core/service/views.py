"""Turning ``spaces`` rows into :class:`core.results.SpaceView` values."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any, Protocol

from sqlalchemy.ext.asyncio import AsyncSession

from core import transcripts
from core.context import Context
from core.db import Space
from core.results import Refused, SpaceView, Transcript
from core.statuses import SpaceStatus
from core.transcripts import FORMATS


def _names(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


class SpaceFields(Protocol):
    """What :func:`space_view` reads: a ``Space`` or a row of just these columns."""

    @property
    def space_id(self) -> str: ...
    @property
    def space_url(self) -> str: ...
    @property
    def title(self) -> str: ...
    @property
    def status(self) -> str: ...
    @property
    def creator(self) -> str | None: ...
    @property
    def audio_duration_seconds(self) -> int | None: ...
    @property
    def participants(self) -> str | None: ...
    @property
    def transcription_count(self) -> int | None: ...
    @property
    def chat_unlock_count(self) -> int | None: ...
    @property
    def error_message(self) -> str | None: ...
    @property
    def completed_at(self) -> datetime | None: ...
    @property
    def chapter_titles(self) -> str | None: ...
    @property
    def space_started_at(self) -> datetime | None: ...


def space_view(space: SpaceFields, queue_position: int | None = None) -> SpaceView:
    return SpaceView(
        space_id=space.space_id,
        url=space.space_url,
        title=space.title,
        status=space.status,
        creator=space.creator,
        duration_seconds=space.audio_duration_seconds,
        participants=_names(space.participants),
        transcription_count=space.transcription_count or 0,
        chat_unlock_count=space.chat_unlock_count or 0,
        queue_position=queue_position,
        error=space.error_message if space.status == SpaceStatus.FAILED else None,
        completed_at=space.completed_at,
        chapters=_names(space.chapter_titles) if space.status == SpaceStatus.COMPLETED else [],
        started_at=space.space_started_at,
    )


def format_problem(fmt: str) -> Refused | None:
    if fmt in FORMATS:
        return None
    return Refused(
        "invalid_format", f"Unknown format {fmt[:20]!r}: choose one of {', '.join(FORMATS)}."
    )


async def transcript_of(
    session: AsyncSession, ctx: Context, space: Space, fmt: str = "md"
) -> Transcript | None:
    """The transcript of a completed Space in ``fmt`` (one of FORMATS), from the database
    (:mod:`core.transcripts`): what every delivery and download sends."""
    if space.status != SpaceStatus.COMPLETED or fmt not in FORMATS:
        return None
    content = await transcripts.read(session, ctx.spaces_dir, space, fmt)
    if content is None:
        return None
    view = space_view(space)
    return Transcript(space=view, content=content, speakers=view.participants, format=fmt)


def space_json(v: SpaceView) -> dict[str, Any]:
    """A Space as the x402 API and the MCP tools show it (the free teaser: chapter titles,
    never what is paid for)."""
    return {
        "space_id": v.space_id,
        "url": v.url,
        "title": v.title,
        "status": v.status,
        "creator": v.creator,
        "duration_seconds": v.duration_seconds,
        "participants": v.participants,
        "queue_position": v.queue_position,
        "error": v.error,
        "completed_at": v.completed_at.isoformat() if v.completed_at else None,
        "chapters": v.chapters,
    }
