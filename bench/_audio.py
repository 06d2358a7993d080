"""Generated long audio for benchmarks (cached): AAC at 64 kb/s like an X Space replay."""

from __future__ import annotations

import subprocess
import tempfile
from pathlib import Path

from core.pipeline.ffmpeg import ffmpeg_exe

CACHE = Path(tempfile.gettempdir()) / "spacescribe-bench"


def long_audio(seconds: int) -> Path:
    CACHE.mkdir(exist_ok=True)
    out = CACHE / f"audio-{seconds}s.m4a"
    if not out.exists():
        tmp = out.with_suffix(".tmp.m4a")
        subprocess.run(
            [
                ffmpeg_exe(),
                "-v",
                "error",
                "-y",
                "-f",
                "lavfi",
                "-i",
                f"anoisesrc=color=pink:amplitude=0.2:duration={seconds}:sample_rate=22050",
                "-ac",
                "1",
                "-c:a",
                "aac",
                "-b:a",
                "64k",
                "-f",
                "mp4",
                str(tmp),
            ],
            check=True,
        )
        tmp.replace(out)
    return out
