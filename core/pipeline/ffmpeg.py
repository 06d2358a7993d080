"""The ffmpeg binary (system one if on PATH, else the imageio-ffmpeg wheel's) and probing."""

from __future__ import annotations

import asyncio
import re
import shutil
from functools import lru_cache
from pathlib import Path

from core.pipeline.errors import PipelineError

_DURATION = re.compile(rb"Duration: (\d+):(\d\d):(\d\d(?:\.\d+)?)")
# "  Stream #0:0[0x1](und): Audio: aac ..." in ``ffmpeg -i`` output (the wheel has no ffprobe)
_AUDIO_STREAM = re.compile(rb"^\s*Stream #\d+:\d+\S*: Audio: ", re.MULTILINE)


@lru_cache(maxsize=1)
def ffmpeg_exe() -> str:
    found = shutil.which("ffmpeg")
    if found:
        return found
    import imageio_ffmpeg

    return str(imageio_ffmpeg.get_ffmpeg_exe())


async def run(*args: str) -> bytes:
    """Run ffmpeg; its stderr is returned (ffmpeg reports there). Fails with PipelineError."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        *args,
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    try:
        _, err = await proc.communicate()
    finally:
        if proc.returncode is None:  # cancelled: the process must not outlive its task
            proc.kill()
            await proc.wait()
    if proc.returncode != 0:
        tail = err.decode(errors="replace").strip().splitlines()[-1:] or ["?"]
        raise PipelineError(f"ffmpeg failed: {tail[0][:200]}")
    return err


async def _header(path: Path) -> bytes:
    """What ``ffmpeg -i`` prints about a file (it exits 1: no output named; that is fine)."""
    proc = await asyncio.create_subprocess_exec(
        ffmpeg_exe(),
        "-hide_banner",
        "-nostdin",
        "-i",
        str(path),
        stdout=asyncio.subprocess.DEVNULL,
        stderr=asyncio.subprocess.PIPE,
    )
    _, err = await proc.communicate()
    return err


async def has_audio_stream(path: Path) -> bool:
    return bool(_AUDIO_STREAM.search(await _header(path)))


async def probe_duration(path: Path) -> float:
    """Duration in seconds from the container header (no decoding)."""
    err = await _header(path)
    m = _DURATION.search(err)
    if not m:
        raise PipelineError("the audio file has no readable duration", retryable=False)
    h, mi, s = m.groups()
    return int(h) * 3600 + int(mi) * 60 + float(s)
