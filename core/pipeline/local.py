"""Local sources for ``spacescribe transcribe``: an audio file gets a safe local id."""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.pipeline.ffmpeg import has_audio_stream, run
from core.pipeline.storage import SpaceFiles

_ALPHABET = "0123456789abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"


def local_id(path: Path) -> str:
    """13 alphanumerics derived from the file's content: same file, same id; never a path."""
    h = hashlib.sha256()
    with path.open("rb") as f:
        for block in iter(lambda: f.read(1 << 20), b""):
            h.update(block)
    n = int.from_bytes(h.digest(), "big")
    chars = []
    for _ in range(12):
        n, r = divmod(n, len(_ALPHABET))
        chars.append(_ALPHABET[r])
    return "L" + "".join(chars)  # "L" marks a local file, not an X Space


async def file_problem(path: Path) -> str | None:
    """Why this path cannot be transcribed, in the user's words; None when it can."""
    if path.is_dir():
        return f"that is a folder, not an audio file: {path}"
    if not path.exists():
        return f"file not found: {path}"
    if not path.is_file():
        return f"not a regular file: {path}"
    try:
        if path.stat().st_size == 0:
            return f"the file is empty: {path}"
        with path.open("rb"):
            pass
    except OSError as e:
        return f"cannot read {path}: {e.strerror}"
    if not await has_audio_stream(path):
        return f"no audio stream in this file: {path}"
    return None


async def import_audio(path: Path, files: SpaceFiles) -> None:
    """Convert any audio ffmpeg reads into the Space's audio.m4a (AAC), atomically."""
    if files.audio.exists():
        return
    files.root.mkdir(parents=True, exist_ok=True)
    tmp = files.root / ".import.m4a"
    await run(
        "-v",
        "error",
        "-y",
        "-i",
        str(path),
        "-vn",
        "-c:a",
        "aac",
        "-b:a",
        "64k",
        "-f",
        "mp4",
        str(tmp),
    )
    tmp.replace(files.audio)
