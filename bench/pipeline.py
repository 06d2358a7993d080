"""Pipeline overhead without speech-to-text (probe, chunk, merge, render), 30 min vs 2 h.

Each run is a separate process, so its peak RSS (``ru_maxrss`` of the process and of its
ffmpeg children) is its own. Targets: 2 h ≤ 20 s, peak RSS ≤ 300 MB and flat from 30 min
to 2 h. Chunks are cut as the OpenAI backend cuts them (AAC stream copy) and as the offline
backend does (16 kHz PCM); a null transcriber returns a segment per 10 s instantly.
"""

from __future__ import annotations

import asyncio
import json
import resource
import shutil
import subprocess
import sys
import tempfile
import time
from pathlib import Path

from bench._audio import long_audio


class NullTranscriber:
    name = "null"
    diarizes = False

    def __init__(self, fmt: str) -> None:
        self.chunk_format = fmt

    async def transcribe(self, audio: Path, duration: float):  # type: ignore[no-untyped-def]
        from core.pipeline.transcribe.base import Segment

        return [
            Segment(t, t + 9.5, f"words at {t:.0f} seconds", None)
            for t in range(0, int(duration), 10)
        ]


def child(audio: str, fmt: str) -> None:
    from core.config import Secrets, load_settings
    from core.pipeline.run import transcribe_audio
    from core.pipeline.storage import SpaceFiles

    data = Path(tempfile.mkdtemp(prefix="bench-pipeline-"))
    try:
        settings = load_settings(data_dir=data)
        files = SpaceFiles.of(settings.spaces_dir, "1BENCHBENCH01")
        files.root.mkdir(parents=True)
        shutil.copy(audio, files.audio)
        t0 = time.perf_counter()
        res = asyncio.run(
            transcribe_audio(
                settings,
                Secrets.model_construct(),
                files,
                title="bench",
                transcriber=NullTranscriber(fmt),
            )
        )
        took = time.perf_counter() - t0
    finally:
        shutil.rmtree(data, ignore_errors=True)
    rss_self = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss / 1024
    rss_children = resource.getrusage(resource.RUSAGE_CHILDREN).ru_maxrss / 1024
    print(
        json.dumps(
            {
                "seconds": took,
                "rss_mb": rss_self,
                "ffmpeg_rss_mb": rss_children,
                "segments": len(res.doc.segments),
            }
        )
    )


def measure(audio: Path, fmt: str) -> dict[str, float]:
    out = subprocess.run(
        [sys.executable, "-m", "bench.pipeline", "--child", str(audio), fmt],
        capture_output=True,
        text=True,
        check=True,
    )
    return json.loads(out.stdout.strip().splitlines()[-1])


def main() -> None:
    print("generating audio (cached after the first run) ...", flush=True)
    short, long = long_audio(30 * 60), long_audio(2 * 3600)
    print(f"{'chunks':<16}{'audio':>7}{'wall s':>9}{'python MB':>11}{'ffmpeg MB':>11}")
    results = {}
    for fmt, label in (("m4a", "openai (copy)"), ("wav", "offline (pcm)")):
        for name, audio in (("30 min", short), ("2 h", long)):
            r = measure(audio, fmt)
            results[(fmt, name)] = r
            print(
                f"{label:<16}{name:>7}{r['seconds']:>9.2f}{r['rss_mb']:>11.0f}"
                f"{r['ffmpeg_rss_mb']:>11.0f}",
                flush=True,
            )
    for fmt, label in (("m4a", "openai"), ("wav", "offline")):
        a, b = results[(fmt, "30 min")], results[(fmt, "2 h")]
        print(
            f"{label}: 2 h / 30 min wall = {b['seconds'] / a['seconds']:.2f}× (audio 4×), "
            f"peak RSS 2 h / 30 min = {b['rss_mb'] / a['rss_mb']:.2f}× (python), "
            f"{b['ffmpeg_rss_mb'] / max(1.0, a['ffmpeg_rss_mb']):.2f}× (ffmpeg)"
        )


if __name__ == "__main__":
    if len(sys.argv) > 1 and sys.argv[1] == "--child":
        child(sys.argv[2], sys.argv[3])
    else:
        main()
