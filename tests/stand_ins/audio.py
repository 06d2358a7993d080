"""Speech and Space-like HLS streams made in the tests (espeak-ng + ffmpeg), served locally."""

from __future__ import annotations

import subprocess
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path

from aiohttp import web

from core.pipeline.ffmpeg import ffmpeg_exe
from tests.stand_ins.http import serve


def speech_wav(text: str, out: Path, speed: int = 150) -> Path:
    subprocess.run(
        ["espeak-ng", "-v", "en-us", "-s", str(speed), "-w", str(out), text],
        check=True,
        capture_output=True,
    )
    return out


def ffmpeg(*args: str) -> None:
    subprocess.run([ffmpeg_exe(), "-v", "error", "-y", *args], check=True)


def concat_wavs(parts: list[Path], out: Path, gap_seconds: float = 0.5) -> Path:
    """Speech parts separated by silence, as one 16 kHz mono wav."""
    inputs: list[str] = []
    filters = []
    for i, p in enumerate(parts):
        inputs += ["-i", str(p)]
        filters.append(f"[{i}:a]aresample=16000,apad=pad_dur={gap_seconds}[a{i}]")
    chain = "".join(f"[a{i}]" for i in range(len(parts)))
    graph = ";".join(filters) + f";{chain}concat=n={len(parts)}:v=0:a=1[out]"
    ffmpeg(*inputs, "-filter_complex", graph, "-map", "[out]", "-ac", "1", "-ar", "16000", str(out))
    return out


def tone_wav(seconds: float, out: Path) -> Path:
    ffmpeg(
        "-f",
        "lavfi",
        "-i",
        f"sine=frequency=440:duration={seconds}",
        "-ac",
        "1",
        "-ar",
        "16000",
        str(out),
    )
    return out


def noise_m4a(seconds: int, out: Path) -> Path:
    """Pink noise as mono AAC at 64 kb/s in MP4, like an X Space replay's audio."""
    source = f"anoisesrc=color=pink:amplitude=0.2:duration={seconds}:sample_rate=22050"
    ffmpeg(
        "-f", "lavfi", "-i", source, "-ac", "1", "-c:a", "aac", "-b:a", "64k", "-f", "mp4", str(out)
    )
    return out


def make_hls(source: Path, out_dir: Path, segment_seconds: int = 4) -> Path:
    """AAC segments + playlist, like the replay of an X Space."""
    out_dir.mkdir(parents=True, exist_ok=True)
    ffmpeg(
        "-i",
        str(source),
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "hls",
        "-hls_time",
        str(segment_seconds),
        "-hls_playlist_type",
        "vod",
        "-hls_segment_filename",
        str(out_dir / "seg%03d.ts"),
        str(out_dir / "playlist.m3u8"),
    )
    return out_dir / "playlist.m3u8"


@asynccontextmanager
async def hls_server(root: Path) -> AsyncIterator[str]:
    """Serve ``root`` over HTTP; ``/missing.m3u8`` answers 404 like a deleted replay."""
    app = web.Application()
    app.router.add_static("/", root)
    async with serve(app) as url:
        yield url
