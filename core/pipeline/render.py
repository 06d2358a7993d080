"""transcript.md (for people) and transcript.json (for programs), written atomically.

transcript.json::

    {"space_id": str, "title": str, "creator": str|null, "url": str,
     "started_at": ISO-8601|null, "duration_seconds": float, "backend": str,
     "participants": [str], "speaker_profiles": [{speaker, talk_seconds, segments,
     first_seen, last_seen}],
     "segments": [{"start": float, "end": float, "speaker": str|null, "text": str}],
     "enrichment": null | {...}}   # summary, chapters, quotes: see core/enrich/model.py
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

from core.enrich.text import markdown_block
from core.pipeline.speakers import UNKNOWN
from core.pipeline.transcribe.base import Segment

PARAGRAPH_GAP = 2.0  # seconds of silence that start a new paragraph for the same speaker


def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


@dataclass(frozen=True)
class TranscriptDoc:
    space_id: str
    title: str
    creator: str | None
    url: str
    started_at: datetime | None
    duration_seconds: float
    backend: str
    participants: list[str]
    speaker_profiles: list[dict[str, Any]]
    segments: list[Segment]
    enrichment: dict[str, Any] | None = None  # core.enrich.model.Enrichment.to_json()


def paragraphs(segments: list[Segment]) -> list[tuple[float, str, str]]:
    out: list[tuple[float, str, str]] = []
    last_end, last_speaker = -1e9, None
    for s in segments:
        speaker = s.speaker or UNKNOWN
        if out and speaker == last_speaker and s.start - last_end < PARAGRAPH_GAP:
            start, spk, text = out[-1]
            out[-1] = (start, spk, f"{text} {s.text}")
        else:
            out.append((s.start, speaker, s.text))
        last_end, last_speaker = s.end, speaker
    return out


def to_markdown(doc: TranscriptDoc) -> str:
    lines = [f"# {doc.title}", ""]
    if doc.creator:
        lines.append(f"- Host: {doc.creator}")
    if doc.started_at:
        lines.append(f"- Date: {doc.started_at:%Y-%m-%d %H:%M} UTC")
    lines.append(f"- Duration: {hms(doc.duration_seconds)}")
    if doc.participants:
        lines.append(f"- Participants: {', '.join(doc.participants)}")
    lines += [f"- Space: {doc.url}", ""]
    lines += markdown_block(doc.enrichment)  # the overview, before the body
    if not doc.segments:
        lines.append("_No speech was recognised in this recording._")
    for start, speaker, text in paragraphs(doc.segments):
        lines += [f"[{hms(start)}] {speaker}: {text}", ""]
    return "\n".join(lines).rstrip() + "\n"


def to_json(doc: TranscriptDoc) -> str:
    return json.dumps(
        {
            "space_id": doc.space_id,
            "title": doc.title,
            "creator": doc.creator,
            "url": doc.url,
            "started_at": doc.started_at.isoformat() if doc.started_at else None,
            "duration_seconds": round(doc.duration_seconds, 3),
            "backend": doc.backend,
            "participants": doc.participants,
            "speaker_profiles": doc.speaker_profiles,
            "segments": [s.to_json() for s in doc.segments],
            "enrichment": doc.enrichment,
        },
        ensure_ascii=False,
        indent=1,
    )


def doc_from_json(raw: str) -> TranscriptDoc:
    """transcript.json back into a document (to render it again, e.g. with an enrichment)."""
    d = json.loads(raw)
    started = d.get("started_at")
    return TranscriptDoc(
        space_id=str(d["space_id"]),
        title=str(d["title"]),
        creator=d.get("creator"),
        url=str(d["url"]),
        started_at=datetime.fromisoformat(started) if started else None,
        duration_seconds=float(d["duration_seconds"]),
        backend=str(d["backend"]),
        participants=list(d.get("participants") or []),
        speaker_profiles=list(d.get("speaker_profiles") or []),
        segments=[Segment.from_json(s) for s in d["segments"]],
        enrichment=d.get("enrichment"),
    )
