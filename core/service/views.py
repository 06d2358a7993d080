"""Turning ``spaces`` rows into :class:`core.results.SpaceView` values."""

from __future__ import annotations

import json
from pathlib import Path

from core.context import Context
from core.db import Space
from core.results import SpaceView, Transcript
from core.spaces import space_dir


def _names(raw: str | None) -> list[str]:
    if not raw:
        return []
    try:
        data = json.loads(raw)
    except ValueError:
        return []
    return [str(x) for x in data] if isinstance(data, list) else []


def space_view(space: Space, queue_position: int | None = None) -> SpaceView:
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
        error=space.error_message if space.status == "failed" else None,
        completed_at=space.completed_at,
    )


def transcript_path(ctx: Context, space_id: str) -> Path:
    return space_dir(ctx.spaces_dir, space_id) / "transcript.md"


def transcript_of(ctx: Context, space: Space) -> Transcript | None:
    """The transcript file of a completed Space, if it is on disk."""
    if space.status != "completed":
        return None
    path = transcript_path(ctx, space.space_id)
    if not path.is_file():
        return None
    view = space_view(space)
    return Transcript(space=view, path=path, speakers=view.participants)
