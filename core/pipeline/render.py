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
from core.pipeline.subtitles import to_srt, to_vtt
from core.pipeline.transcribe.base import Segment, ends_sentence

PARAGRAPH_GAP = 2.0  # seconds of silence that start a new paragraph for the same speaker
MAX_PARAGRAPH_SECONDS = 60.0  # a reader gets a new timestamp at least this often


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


def paragraphs(segments: list[Segment]) -> list[tuple[float, str | None, str]]:
    """(start, speaker, text) paragraphs: a new one at every speaker change, after a pause
    of PARAGRAPH_GAP, and before a paragraph would span more than MAX_PARAGRAPH_SECONDS —
    cut after its last sentence end (at a segment boundary if it has none)."""
    groups: list[list[Segment]] = []
    for s in segments:
        cur = groups[-1] if groups else None
        if cur is None or s.speaker != cur[-1].speaker or s.start - cur[-1].end >= PARAGRAPH_GAP:
            groups.append([s])
        elif s.end - cur[0].start > MAX_PARAGRAPH_SECONDS:
            ends = [i for i, seg in enumerate(cur) if ends_sentence(seg.text)]
            cut = ends[-1] + 1 if ends else len(cur)
            tail = cur[cut:]
            del cur[cut:]
            groups.append([*tail, s])
        else:
            cur.append(s)
    return [(g[0].start, g[0].speaker, " ".join(seg.text for seg in g)) for g in groups]


def to_markdown(doc: TranscriptDoc) -> str:
    lines = [f"# {doc.title}", ""]
    if doc.creator:
        lines.append(f"- Host: {doc.creator}")
    if doc.started_at:
        lines.append(f"- Date: {doc.started_at:%Y-%m-%d %H:%M} UTC")
    lines.append(f"- Duration: {hms(doc.duration_seconds)}")
    if doc.participants:
        lines.append(f"- Participants: {', '.join(doc.participants)}")
    labelled = any(s.speaker for s in doc.segments)
    if doc.segments and not labelled:
        lines.append(
            f"- Speakers: not detected (the {doc.backend} backend does not tell voices apart)"
        )
    lines += [f"- Space: {doc.url}", ""]
    lines += markdown_block(doc.enrichment)  # the overview, before the body
    if not doc.segments:
        lines.append("_No speech was recognised in this recording._")
    for start, speaker, text in paragraphs(doc.segments):
        label = f"{speaker or UNKNOWN}: " if labelled else ""
        lines += [f"[{hms(start)}] {label}{text}", ""]
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


def documents(doc: TranscriptDoc) -> dict[str, str]:
    """Every document of a transcript by format (md, json, srt, vtt): what is written to
    the Space's folder and stored in ``transcript_documents``."""
    segments = [s.to_json() for s in doc.segments]
    return {
        "md": to_markdown(doc),
        "json": to_json(doc),
        "srt": to_srt(segments),
        "vtt": to_vtt(segments),
    }
