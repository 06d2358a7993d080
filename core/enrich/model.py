"""The enrichment of a Space as plain values, and its JSON form (stored and in transcript.json).

JSON (``transcript.json`` key ``enrichment``, table ``space_enrichments.data``)::

    {"method": "openai" | "extractive", "model": str,
     "takeaways": [{"text": str, "start": float}],            # 5–8, in time order
     "chapters": [{"title": str, "start": float, "end": float}],  # cover 0…duration, in order
     "quotes": [{"speaker": str|null, "start": float, "text": str}],  # verbatim, verified
     "tokens_used": int, "largest_prompt_tokens": int}
"""

from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any

MIN_TAKEAWAYS = 5
MAX_TAKEAWAYS = 8
MAX_QUOTES = 6


@dataclass(frozen=True)
class Takeaway:
    text: str
    start: float


@dataclass(frozen=True)
class Chapter:
    title: str
    start: float
    end: float


@dataclass(frozen=True)
class NotableQuote:
    speaker: str | None
    start: float
    text: str


@dataclass(frozen=True)
class Enrichment:
    method: str  # "openai" | "extractive"
    model: str
    takeaways: list[Takeaway]
    chapters: list[Chapter]
    quotes: list[NotableQuote]
    tokens_used: int = 0
    largest_prompt_tokens: int = 0
    dropped_quotes: int = field(default=0, compare=False)  # not found verbatim: never shown

    @property
    def extractive(self) -> bool:
        return self.method == "extractive"

    def to_json(self) -> dict[str, Any]:
        return {
            "method": self.method,
            "model": self.model,
            "takeaways": [{"text": t.text, "start": round(t.start, 3)} for t in self.takeaways],
            "chapters": [
                {"title": c.title, "start": round(c.start, 3), "end": round(c.end, 3)}
                for c in self.chapters
            ],
            "quotes": [
                {"speaker": q.speaker, "start": round(q.start, 3), "text": q.text}
                for q in self.quotes
            ],
            "tokens_used": self.tokens_used,
            "largest_prompt_tokens": self.largest_prompt_tokens,
        }

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Enrichment:
        return cls(
            method=str(d["method"]),
            model=str(d.get("model") or d["method"]),
            takeaways=[Takeaway(str(t["text"]), float(t["start"])) for t in d["takeaways"]],
            chapters=[
                Chapter(str(c["title"]), float(c["start"]), float(c["end"])) for c in d["chapters"]
            ],
            quotes=[
                NotableQuote(q.get("speaker"), float(q["start"]), str(q["text"]))
                for q in d["quotes"]
            ],
            tokens_used=int(d.get("tokens_used") or 0),
            largest_prompt_tokens=int(d.get("largest_prompt_tokens") or 0),
        )


def normalise_chapters(chapters: list[Chapter], duration: float) -> list[Chapter]:
    """In time order, the first at 0, each ending where the next starts, the last at the end:
    chapters cover the whole Space whatever a model proposed. Titles stay."""
    kept: list[Chapter] = []
    for c in sorted(chapters, key=lambda c: c.start):
        start = min(max(0.0, c.start), max(duration, 0.0))
        title = " ".join(c.title.split())[:120]
        if not title:
            continue
        if kept and start - kept[-1].start < 1.0:  # same start: keep the first title
            continue
        kept.append(Chapter(title, start, start))
    if not kept:
        return []
    kept[0] = Chapter(kept[0].title, 0.0, 0.0)
    out = []
    for i, c in enumerate(kept):
        end = kept[i + 1].start if i + 1 < len(kept) else max(duration, c.start)
        out.append(Chapter(c.title, c.start, end))
    return out
