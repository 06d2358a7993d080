"""Chunks transcribed in parallel: concurrency 8 vs serial, against the STT stand-in.

The stand-in answers after a latency proportional to the chunk's audio length (as the real
API roughly does). One hour of audio from a local HLS server, 6 × 10-minute chunks, through
the real yt-dlp download and the real openai client. Targets: concurrency 8 ≥ 4× faster
than serial, and within 1.25× of (download + slowest chunk) — the floor when every chunk
runs at once.
"""

from __future__ import annotations

import asyncio
import shutil
import tempfile
import time
from pathlib import Path

from pydantic import SecretStr

from bench._audio import long_audio
from core.config import Secrets, load_settings
from core.pipeline import media
from core.pipeline.run import transcribe_audio
from core.pipeline.storage import SpaceFiles
from tests.stand_ins.audio import hls_server, make_hls
from tests.stand_ins.openai_audio import OpenAIAudio, openai_audio

LATENCY = 0.01  # seconds of stand-in latency per second of audio: 10-min chunk → 6 s
AUDIO_SECONDS = 3600


async def one_run(concurrency: int, hls_url: str, stt: OpenAIAudio) -> dict[str, float]:
    data = Path(tempfile.mkdtemp(prefix="bench-stt-"))
    try:
        settings = load_settings(
            data_dir=data,
            transcription={
                "backend": "openai",
                "chunk_seconds": 600,
                "overlap_seconds": 2,
                "concurrency": concurrency,
                "vad": False,  # generated noise, not speech: measure the uploads themselves
            },
        )
        secrets = Secrets.model_construct(
            openai_api_key=SecretStr("sk-bench"), openai_base_url=stt.url
        )
        files = SpaceFiles.of(settings.spaces_dir, "1BENCHBENCH02")
        meta = media.SpaceMeta(
            "1BENCHBENCH02",
            "bench",
            None,
            None,
            None,
            False,
            True,
            hls_url + "/space/playlist.m3u8",
        )
        t0 = time.perf_counter()
        await media.download(meta, files.audio)
        t_download = time.perf_counter() - t0
        before = len(stt.requests)
        t1 = time.perf_counter()
        await transcribe_audio(settings, secrets, files, title="bench")
        total = time.perf_counter() - t0
        n = len(stt.requests) - before
        return {
            "total": total,
            "download": t_download,
            "stt": time.perf_counter() - t1,
            "chunks": n,
        }
    finally:
        shutil.rmtree(data, ignore_errors=True)


async def run() -> None:
    src = long_audio(AUDIO_SECONDS)
    root = Path(tempfile.gettempdir()) / "spacescribe-bench" / "hls-1h"
    if not (root / "space" / "playlist.m3u8").exists():
        make_hls(src, root / "space", segment_seconds=10)
    async with (
        hls_server(root) as url,
        openai_audio(OpenAIAudio(latency_per_audio_second=LATENCY)) as stt,
    ):
        slowest = 602 * LATENCY  # a 10-minute chunk plus its overlap
        serial = await one_run(1, url, stt)
        par = await one_run(8, url, stt)
    floor = par["download"] + slowest
    print(
        f"audio {AUDIO_SECONDS / 60:.0f} min, {par['chunks']:.0f} chunks, stand-in latency "
        f"{LATENCY * 600:.1f} s per 10-min chunk"
    )
    for name, r in (("serial", serial), ("concurrency 8", par)):
        print(
            f"{name:<14}: total {r['total']:6.2f} s = download {r['download']:5.2f} s + "
            f"chunks→transcript {r['stt']:6.2f} s"
        )
    print(
        f"speed-up of the transcription stage, serial / concurrency 8 = "
        f"{serial['stt'] / par['stt']:.2f}× (target ≥ 4×); end to end "
        f"{serial['total'] / par['total']:.2f}×"
    )
    print(
        f"concurrency 8 / (download + slowest chunk {slowest:.2f} s) = "
        f"{par['total'] / floor:.2f}× (target ≤ 1.25×)"
    )


def main() -> None:
    asyncio.run(run())


if __name__ == "__main__":
    main()
