"""Generated long audio for benchmarks (cached): AAC at 64 kb/s like an X Space replay."""

from __future__ import annotations

import tempfile
from pathlib import Path

from tests.stand_ins.audio import noise_m4a

CACHE = Path(tempfile.gettempdir()) / "spacescribe-bench"


def long_audio(seconds: int) -> Path:
    CACHE.mkdir(exist_ok=True)
    out = CACHE / f"audio-{seconds}s.m4a"
    if not out.exists():
        noise_m4a(seconds, out.with_suffix(".tmp.m4a")).replace(out)
    return out
