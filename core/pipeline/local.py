"""Local sources for ``spacescribe transcribe``: an audio file gets a safe local id."""

from __future__ import annotations

import hashlib
from pathlib import Path

from core.pipeline.ffmpeg import run
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
