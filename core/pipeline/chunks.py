"""Chunking plan and extraction: fixed-length chunks with a small overlap on each side.

Each chunk is cut by its own ffmpeg process seeking in the input, so memory stays flat
whatever the audio length, and a chunk is only made when it is about to be transcribed.
"""

from __future__ import annotations

import math
from dataclasses import dataclass
from pathlib import Path

from core.pipeline.ffmpeg import run

FORMATS = {
    # 16 kHz mono PCM: the offline backend, and the VAD before a speech-only OpenAI upload
    "wav": ["-ac", "1", "-ar", "16000", "-c:a", "pcm_s16le", "-f", "wav"],
    # for OpenAI: the original AAC stream copied, no re-encoding (10 min of a 64 kb/s Space
    # ≈ 4.8 MB) ...
    "m4a": ["-c:a", "copy", "-f", "mp4"],
    # ... unless that is over the upload limit: 16 kHz mono MP3 at 32 kb/s (10 min ≈ 2.4 MB)
    "mp3": ["-ac", "1", "-ar", "16000", "-c:a", "libmp3lame", "-b:a", "32k", "-f", "mp3"],
}
UPLOAD_LIMIT_BYTES = 24 * 1024 * 1024  # OpenAI's audio API takes 25 MB; keep a margin


@dataclass(frozen=True)
class Chunk:
    index: int
    start: float  # nominal range this chunk is responsible for
    end: float
    cut_start: float  # what is actually cut (nominal range widened by the overlap)
    cut_end: float

    @property
    def cut_length(self) -> float:
        return self.cut_end - self.cut_start


MIN_TAIL_SECONDS = 5.0  # a shorter remainder joins the last chunk instead of its own request


def plan(duration: float, chunk_seconds: float, overlap: float) -> list[Chunk]:
    # short chunks (tests, demos) only absorb a proportionally short tail
    tail = min(MIN_TAIL_SECONDS, chunk_seconds / 10)
    n = max(1, math.ceil((duration - tail) / chunk_seconds))
    out = []
    for i in range(n):
        start = i * chunk_seconds
        end = duration if i == n - 1 else (i + 1) * chunk_seconds
        out.append(Chunk(i, start, end, max(0.0, start - overlap), min(duration, end + overlap)))
    return out


async def extract(audio: Path, chunk: Chunk, fmt: str, out: Path) -> Path:
    tmp = out.with_name(out.name + ".part")
    await run(
        "-v",
        "error",
        "-y",
        "-ss",
        f"{chunk.cut_start:.3f}",
        "-t",
        f"{chunk.cut_length:.3f}",
        "-i",
        str(audio),
        "-vn",
        *FORMATS[fmt],
        str(tmp),
    )
    tmp.replace(out)
    return out
