"""Offline enrichment, no model: chapters from topic shifts, takeaways from top sentences.

- Chapters: TextTiling over the chat passages (one-minute windows): the cosine similarity of
  TF-IDF vectors of the passages before and after each gap; the deepest valleys, spaced at
  least ``min_gap`` apart, are where the topic shifts. A chapter's title is its most
  distinctive words (frequent in it, rare in the others).
- Takeaways: sentences scored by the Space-wide weight of their words (frequent across the
  Space, rare per passage), normalised by length; the best of each chapter first, so they
  spread over the Space, near-duplicates skipped.
- Quotes: the best remaining sentence of each chapter, verbatim by construction (still
  passed through the verifier like a model's), with its segment's speaker when known.
Everything it says is extracted, and it says so (``method = "extractive"``).
"""

from __future__ import annotations

import math
import re
from bisect import bisect_right
from collections import Counter
from dataclasses import dataclass
from typing import Any

from core.chat.passages import group
from core.chat.terms import STOPWORDS
from core.enrich.model import (
    MAX_TAKEAWAYS,
    MIN_TAKEAWAYS,
    Chapter,
    Enrichment,
    NotableQuote,
    Takeaway,
    normalise_chapters,
)
from core.enrich.verify import verified

METHOD = "extractive"
CHAPTER_SECONDS = 600.0  # about one chapter per ten minutes
MAX_CHAPTERS = 12
EXTRACTIVE_QUOTES = 4
BLOCK = 3  # passages on each side of a gap
SENTENCE_WORDS = (8, 45)
_WORD = re.compile(r"[^\W\d_][^\W_]*", re.UNICODE)
_SENTENCE = re.compile(r"(?<=[.!?])\s+")
EXTRA_STOP = frozenset(
    [
        "yeah",
        "yes",
        "okay",
        "ok",
        "like",
        "know",
        "think",
        "going",
        "really",
        "right",
        "well",
        "kind",
        "sort",
        "thing",
        "things",
        "lot",
        "get",
        "got",
        "gonna",
        "want",
        "just",
        "also",
        "actually",
        "mean",
        "people",
        "one",
        "two",
        "guys",
        "maybe",
        "much",
        "many",
        "could",
        "would",
        "even",
        "still",
        "way",
        "make",
        "made",
        "see",
        "look",
        "let",
        "good",
        "great",
        "little",
        "bit",
        "time",
    ]
)


def words(text: str) -> list[str]:
    return [
        w
        for w in (m.lower() for m in _WORD.findall(text))
        if len(w) > 2 and w not in STOPWORDS and w not in EXTRA_STOP
    ]


@dataclass(frozen=True)
class Sentence:
    text: str
    start: float
    speaker: str | None
    terms: list[str]


def sentences(segments: list[dict[str, Any]]) -> list[Sentence]:
    out = []
    for seg in segments:
        text = " ".join(str(seg.get("text") or "").split())
        for part in _SENTENCE.split(text):
            part = part.strip()
            if part:
                out.append(Sentence(part, float(seg["start"]), seg.get("speaker"), words(part)))
    return out


def _cosine(a: Counter[str], b: Counter[str]) -> float:
    if not a or not b:
        return 0.0
    dot = sum(v * b.get(k, 0.0) for k, v in a.items())
    na = math.sqrt(sum(v * v for v in a.values()))
    nb = math.sqrt(sum(v * v for v in b.values()))
    return dot / (na * nb) if na and nb else 0.0


def _boundaries(
    vectors: list[Counter[str]], starts: list[float], n: int, min_gap: float
) -> list[int]:
    """Indices of passages that start a new chapter (TextTiling depth scores)."""
    sims = []
    for gap in range(1, len(vectors)):
        left: Counter[str] = Counter()
        right: Counter[str] = Counter()
        for v in vectors[max(0, gap - BLOCK) : gap]:
            left.update(v)
        for v in vectors[gap : gap + BLOCK]:
            right.update(v)
        sims.append(_cosine(left, right))
    depth = []
    for i, s in enumerate(sims):
        lpeak = max(sims[: i + 1])
        rpeak = max(sims[i:])
        depth.append((lpeak - s) + (rpeak - s))
    chosen: list[int] = []
    for i in sorted(range(len(sims)), key=lambda i: (-depth[i], i)):
        at = starts[i + 1]
        if at < min_gap or starts[-1] - at < min_gap / 2:
            continue
        if any(abs(at - starts[c]) < min_gap for c in chosen):
            continue
        chosen.append(i + 1)
        if len(chosen) >= n - 1:
            break
    return sorted(chosen)


def _title(counts: Counter[str], df: Counter[str], n_chapters: int) -> str:
    scored = sorted(
        counts.items(),
        key=lambda kv: (-kv[1] * math.log(1 + n_chapters / df[kv[0]]), kv[0]),
    )
    top = [w for w, c in scored[:3] if c > 1] or [w for w, _c in scored[:3]]
    if not top:
        return "Conversation"
    top = [t.capitalize() if i == 0 else t for i, t in enumerate(top)]
    return top[0] if len(top) == 1 else ", ".join(top[:-1]) + " and " + top[-1]


def _jaccard(a: list[str], b: list[str]) -> float:
    sa, sb = set(a), set(b)
    return len(sa & sb) / len(sa | sb) if sa and sb else 0.0


def enrich(segments: list[dict[str, Any]], duration: float) -> Enrichment:
    duration = max(duration, max((float(s["end"]) for s in segments), default=0.0))
    passages = group(segments)
    if not passages:
        chapters = normalise_chapters([Chapter("Recording", 0.0, duration)], duration)
        return Enrichment(METHOD, METHOD, [], chapters, [])
    vectors_raw = [Counter(words(p.text)) for p in passages]
    df = Counter(w for v in vectors_raw for w in v)
    n_p = len(passages)
    idf = {w: math.log(1 + n_p / d) for w, d in df.items()}
    vectors = [Counter({w: c * idf[w] for w, c in v.items()}) for v in vectors_raw]
    starts = [p.start for p in passages]
    n_chapters = max(1, min(MAX_CHAPTERS, round(duration / CHAPTER_SECONDS)))
    min_gap = max(120.0, duration / (n_chapters * 2))
    cuts = _boundaries(vectors, starts, n_chapters, min_gap) if n_chapters > 1 else []
    bounds = [0, *cuts, n_p]
    chapter_counts: list[Counter[str]] = []
    for a, b in zip(bounds, bounds[1:], strict=False):
        c: Counter[str] = Counter()
        for v in vectors_raw[a:b]:
            c.update(v)
        chapter_counts.append(c)
    cdf = Counter(w for c in chapter_counts for w in c)
    chapters = normalise_chapters(
        [
            Chapter(_title(c, cdf, len(chapter_counts)), starts[a], starts[a])
            for c, a in zip(chapter_counts, bounds, strict=False)
        ],
        duration,
    )

    # sentences, weighted by the Space-wide tf-idf of their words
    total = Counter(w for v in vectors_raw for w in v.elements())
    weight = {w: (1 + math.log(total[w])) * idf[w] for w in total}
    lo, hi = SENTENCE_WORDS
    cands = [
        s for s in sentences(segments) if lo <= len(s.text.split()) <= hi and len(s.terms) >= 3
    ]
    scored = sorted(
        cands,
        key=lambda s: -sum(weight.get(w, 0.0) for w in set(s.terms)) / math.sqrt(len(s.terms)),
    )
    n_take = max(MIN_TAKEAWAYS, min(MAX_TAKEAWAYS, len(chapters)))
    picked: list[Sentence] = []

    chapter_starts = [c.start for c in chapters]

    def chapter_of(t: float) -> int:
        return max(0, bisect_right(chapter_starts, t + 1e-6) - 1)

    def take(s: Sentence, limit: int, per_chapter: int) -> None:
        same = sum(chapter_of(p.start) == chapter_of(s.start) for p in picked)
        if (
            len(picked) < limit
            and same < per_chapter
            and all(_jaccard(s.terms, p.terms) < 0.5 for p in picked)
        ):
            picked.append(s)

    best_of: dict[int, Sentence] = {}  # chapter → its best sentence
    for s in scored:
        best_of.setdefault(chapter_of(s.start), s)
    # the chapters' best sentences first (strongest chapters first), then the rest
    rank = {id(s): i for i, s in enumerate(scored)}
    for s in sorted(best_of.values(), key=lambda s: rank[id(s)]):
        take(s, n_take, 1)
    for per_chapter in (2, n_take):
        for s in scored:
            take(s, n_take, per_chapter)
    picked.sort(key=lambda s: s.start)
    takeaways = [Takeaway(s.text[:1].upper() + s.text[1:], s.start) for s in picked]

    # quotes: the best remaining line per chapter, strongest first (a named speaker's when
    # the backend knows speakers; otherwise unattributed, never a guessed name)
    used = {id(s) for s in picked}
    per_chapter_quote: dict[int, Sentence] = {}
    for s in scored:
        if id(s) not in used and len(s.text.split()) <= 35:
            per_chapter_quote.setdefault(chapter_of(s.start), s)
    quote_cands = [
        NotableQuote(s.speaker, s.start, s.text)
        for s in sorted(per_chapter_quote.values(), key=lambda s: rank[id(s)])
    ]
    quotes, dropped = verified(quote_cands[:EXTRACTIVE_QUOTES], segments, EXTRACTIVE_QUOTES)
    return Enrichment(METHOD, METHOD, takeaways, chapters, quotes, dropped_quotes=dropped)
