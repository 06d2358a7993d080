"""Quotes are verbatim or dropped: checked by code against the segments around their time.

A model may paraphrase, merge two sentences or invent a line. A quote is kept only if its
words (case, punctuation and spacing aside) appear contiguously, in order, in the transcript
within ``WINDOW_SECONDS`` of its timestamp, said by one speaker. What is shown is then the
transcript's own words, with the segment's speaker and start: never the model's version.
"""

from __future__ import annotations

import re
from bisect import bisect_left
from typing import Any

from core.enrich.model import NotableQuote

WINDOW_SECONDS = 90.0
MIN_WORDS = 4
MAX_WORDS = 80
_TOKEN = re.compile(r"\S+")
_NORM = re.compile(r"[^\w]+", re.UNICODE)


def _norm(word: str) -> str:
    return _NORM.sub("", word.lower().replace("’", "'"))


class SegmentIndex:
    """Segments sorted by start, for window look-ups of many quotes."""

    def __init__(self, segments: list[dict[str, Any]]) -> None:
        self.segments = sorted(segments, key=lambda s: float(s["start"]))
        self.starts = [float(s["start"]) for s in self.segments]

    def window(self, at: float) -> list[dict[str, Any]]:
        lo = bisect_left(self.starts, at - WINDOW_SECONDS - 30.0)  # a long segment may start early
        out = []
        for s in self.segments[lo:]:
            if float(s["start"]) > at + WINDOW_SECONDS:
                break
            if float(s["end"]) >= at - WINDOW_SECONDS:
                out.append(s)
        return out


def verify(candidate: NotableQuote, index: SegmentIndex) -> NotableQuote | None:
    """The verbatim quote as the transcript says it, or None (not found: dropped)."""
    wanted = [w for w in (_norm(t) for t in _TOKEN.findall(candidate.text)) if w]
    if not MIN_WORDS <= len(wanted) <= MAX_WORDS:
        return None
    words: list[tuple[str, str, int]] = []  # (normalised, original, segment position)
    window = index.window(candidate.start)
    for pos, seg in enumerate(window):
        for tok in _TOKEN.findall(str(seg.get("text") or "")):
            if norm := _norm(tok):
                words.append((norm, tok, pos))
    n = len(wanted)
    for i in range(len(words) - n + 1):
        if words[i][0] != wanted[0]:
            continue
        if all(words[i + k][0] == wanted[k] for k in range(1, n)):
            span = words[i : i + n]
            segs = [window[p] for p in dict.fromkeys(w[2] for w in span)]
            speakers = {s.get("speaker") for s in segs}
            if len(speakers) != 1:
                continue  # a "quote" stitched across speakers is nobody's words
            text = " ".join(w[1] for w in span).strip(" ,;:-")
            return NotableQuote(segs[0].get("speaker"), float(segs[0]["start"]), text)
    return None


def verified(
    candidates: list[NotableQuote], segments: list[dict[str, Any]], limit: int
) -> tuple[list[NotableQuote], int]:
    """Kept quotes (the first ``limit`` found, deduplicated, then in time order) and how many
    candidates were dropped."""
    index = SegmentIndex(segments)
    kept: list[NotableQuote] = []
    dropped = 0
    seen: set[str] = set()
    for c in candidates:
        q = verify(c, index)
        if q is None:
            dropped += 1
            continue
        key = " ".join(_norm(t) for t in q.text.split())
        if key in seen:
            continue
        seen.add(key)
        if len(kept) < limit:
            kept.append(q)
    kept.sort(key=lambda q: q.start)
    return kept, dropped
