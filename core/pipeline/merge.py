"""Merge chunk transcripts into one timeline.

Times are shifted by each chunk's cut start. The overlap means a sentence at a boundary is
heard by both chunks: each segment is kept by the chunk whose nominal range holds its
midpoint, so nothing is lost and nothing is doubled. Speaker labels, which a diarizing
backend assigns per request, are carried across chunks by matching the segments both
chunks heard in their overlap; labels that cannot be matched get new names.
"""

from __future__ import annotations

from core.pipeline.chunks import Chunk
from core.pipeline.transcribe.base import Segment


def _overlap(a: Segment, b: Segment) -> float:
    return max(0.0, min(a.end, b.end) - max(a.start, b.start))


def _label_map(
    prev: list[Segment], cur: list[Segment], lo: float, hi: float, next_id: list[int]
) -> dict[str, str]:
    """Chunk-local label → global label, voted by time shared in the overlap [lo, hi]."""
    votes: dict[str, dict[str, float]] = {}
    for c in cur:
        if c.speaker is None or c.end < lo or c.start > hi:
            continue
        for p in prev:
            if p.speaker is not None and (ov := _overlap(c, p)) > 0:
                votes.setdefault(c.speaker, {}).setdefault(p.speaker, 0.0)
                votes[c.speaker][p.speaker] += ov
    mapping: dict[str, str] = {}
    for c in cur:
        if c.speaker is None or c.speaker in mapping:
            continue
        if c.speaker in votes:
            mapping[c.speaker] = max(votes[c.speaker].items(), key=lambda kv: kv[1])[0]
        else:
            mapping[c.speaker] = f"Speaker {next_id[0]}"
            next_id[0] += 1
    return mapping


def merge(parts: list[tuple[Chunk, list[Segment]]]) -> list[Segment]:
    out: list[Segment] = []
    prev_abs: list[Segment] = []
    next_id = [1]
    for idx, (chunk, segs) in enumerate(sorted(parts, key=lambda p: p[0].index)):
        absolute = [s.shifted(chunk.cut_start) for s in segs]
        if idx == 0:
            mapping: dict[str, str] = {}
            for s in absolute:
                if s.speaker is not None and s.speaker not in mapping:
                    mapping[s.speaker] = f"Speaker {next_id[0]}"
                    next_id[0] += 1
        else:
            overlap_end = chunk.start + (chunk.start - chunk.cut_start)
            mapping = _label_map(prev_abs, absolute, chunk.cut_start, overlap_end, next_id)
        renamed = [
            Segment(
                s.start, s.end, s.text, mapping.get(s.speaker, s.speaker) if s.speaker else None
            )
            for s in absolute
        ]
        last = idx == len(parts) - 1
        for s in renamed:
            mid = (s.start + s.end) / 2
            if chunk.start <= mid < chunk.end or (last and mid >= chunk.start):
                out.append(s)
        prev_abs = renamed
    out.sort(key=lambda s: (s.start, s.end))
    return out
