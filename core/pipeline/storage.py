"""Files of a Space, only under ``data/spaces/<space_id>/``, written atomically."""

from __future__ import annotations

import os
import shutil
import tempfile
from dataclasses import dataclass
from pathlib import Path

from core.spaces import space_dir

DOWNLOAD_DIR = ".download"  # prefix of each attempt's directory beside the audio (yt-dlp, remux)


def atomic_write(path: Path, data: bytes | str) -> None:
    """Write to a temporary name in the same directory, fsync, then rename over ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    raw = data.encode() if isinstance(data, str) else data
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(raw)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        with contextlib_suppress():
            os.unlink(tmp)
        raise


class contextlib_suppress:  # tiny local helper: suppress OSError during cleanup
    def __enter__(self) -> None:
        return None

    def __exit__(self, *exc: object) -> bool:
        return exc[0] is not None and issubclass(exc[0], OSError)  # type: ignore[arg-type]


@dataclass(frozen=True)
class SpaceFiles:
    root: Path
    space_id: str

    @classmethod
    def of(cls, spaces_dir: Path, space_id: str) -> SpaceFiles:
        return cls(space_dir(spaces_dir, space_id), space_id)

    @property
    def audio(self) -> Path:
        return self.root / "audio.m4a"

    @property
    def markdown(self) -> Path:
        return self.root / "transcript.md"

    @property
    def json(self) -> Path:
        return self.root / "transcript.json"

    @property
    def srt(self) -> Path:
        return self.root / "transcript.srt"

    @property
    def vtt(self) -> Path:
        return self.root / "transcript.vtt"

    @property
    def chunks(self) -> Path:
        return self.root / "chunks"

    def chunk_result(self, index: int) -> Path:
        return self.chunks / f"{index:04d}.json"

    def clear_partial(self) -> None:
        """Remove what an attempt killed mid-write left: the download directory, temporary
        names of atomic writes, chunk audio being cut or sent. Finished files (which only
        appear by rename) stay. Only the job's lease holder may call this."""
        for folder in (self.root, self.chunks):
            if not folder.is_dir():
                continue
            for p in folder.iterdir():
                if folder == self.root and p.is_dir() and p.name.startswith(DOWNLOAD_DIR):
                    shutil.rmtree(p, ignore_errors=True)  # any attempt's download directory
                    continue
                temporary = p.name.startswith(".") and p.name.endswith(".tmp")
                chunk_audio = folder == self.chunks and p.suffix != ".json"
                if p.is_file() and (temporary or chunk_audio or p.name.endswith(".part")):
                    p.unlink(missing_ok=True)

    def relative(self, path: Path, data_dir_name: str = "data") -> str:
        """The seed's relative form: data/spaces/<space_id>/<file>."""
        return f"{data_dir_name}/spaces/{self.space_id}/{path.name}"
