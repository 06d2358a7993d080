"""Transcript segments → passages: time windows with overlap, speakers kept.

A fact said across a window boundary still lands whole in one passage thanks to the overlap;
each line keeps its speaker ("Alice: ...") so "what did Alice say about X" matches.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

WINDOW_SECONDS = 60.0
OVERLAP_SECONDS = 15.0
MAX_WORDS = 180  # a very dense minute is cut early, keeping passages comparable for ranking


@dataclass
class PassageDraft:
    seq: int
    start: float
    end: float
    speakers: list[str] = field(default_factory=list)
    lines: list[str] = field(default_factory=list)

    @property
    def text(self) -> str:
        return "\n".join(self.lines)


def _clean(segments: list[dict[str, Any]]) -> list[tuple[float, float, str | None, str]]:
    out = []
    for seg in segments:
        text = " ".join(str(seg.get("text") or "").split())
        if not text:
            continue
        start = float(seg.get("start") or 0.0)
        end = max(float(seg.get("end") or start), start)
        speaker = seg.get("speaker")
        out.append((start, end, str(speaker) if speaker else None, text))
    out.sort(key=lambda s: (s[0], s[1]))
    return out


def group(segments: list[dict[str, Any]]) -> list[PassageDraft]:
    segs = _clean(segments)
    passages: list[PassageDraft] = []
    i = 0
    while i < len(segs):
        p = PassageDraft(seq=len(passages), start=segs[i][0], end=segs[i][1])
        words = 0
        j = i
        while j < len(segs):
            start, end, speaker, text = segs[j]
            if j > i and (end - p.start > WINDOW_SECONDS or words >= MAX_WORDS):
                break
            p.lines.append(f"{speaker}: {text}" if speaker else text)
            if speaker and speaker not in p.speakers:
                p.speakers.append(speaker)
            p.end = max(p.end, end)
            words += len(text.split())
            j += 1
        passages.append(p)
        if j >= len(segs):
            break
        # next window starts at the first segment of the last OVERLAP_SECONDS (always advancing)
        k = j - 1
        while k > i + 1 and segs[k - 1][0] >= p.end - OVERLAP_SECONDS:
            k -= 1
        i = max(k, i + 1) if j - i > 1 else j
    return passages
