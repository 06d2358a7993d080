"""The transcriber interface and the segment value every backend returns."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Protocol

_CLOSERS = "\"')]»”’"
_ABBREVIATIONS = {"mr.", "mrs.", "ms.", "dr.", "st.", "jr.", "sr.", "vs.", "prof.", "mt.", "no."}


def ends_sentence(text: str) -> bool:
    """Whether text ends a sentence: . ? ! … (closing quotes allowed), not "Mr." or "J."."""
    t = text.rstrip().rstrip(_CLOSERS)
    if not t.endswith((".", "?", "!", "…")):
        return False
    last = t.rsplit(None, 1)[-1].lower() if t.split() else ""
    initial = len(last) == 2 and last[0].isalpha()  # "J." in "J. R. R. Tolkien"
    return last not in _ABBREVIATIONS and not initial


@dataclass(frozen=True)
class Segment:
    start: float  # seconds from the start of the audio (or of the chunk, inside a backend)
    end: float
    text: str
    speaker: str | None = None

    def shifted(self, offset: float) -> Segment:
        return Segment(self.start + offset, self.end + offset, self.text, self.speaker)

    def to_json(self) -> dict[str, Any]:
        d = asdict(self)
        d["start"], d["end"] = round(self.start, 3), round(self.end, 3)
        return d

    @classmethod
    def from_json(cls, d: dict[str, Any]) -> Segment:
        return cls(float(d["start"]), float(d["end"]), str(d["text"]), d.get("speaker"))


class Transcriber(Protocol):
    name: str
    chunk_format: str  # "wav" (16 kHz mono PCM) or "m4a" (AAC copied; MP3 if too large)
    diarizes: bool

    async def transcribe(self, audio: Path, duration: float) -> list[Segment]:
        """Segments of one chunk, timed from the chunk's start."""
        ...
