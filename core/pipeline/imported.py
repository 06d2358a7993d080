"""A recording imported by the operator or an admin (``spacescribe import``, ``/import``).

The file is checked before anything is stored (a regular, non-empty file within the size
limit, an audio stream ffmpeg reads, a duration within the limit), converted to AAC beside
the Spaces (``<spaces>/.imports/<random>/``, never inside a Space's folder), and only then
swapped in as the Space's ``audio.m4a``: what the Space held before is kept aside until the
database has recorded the import, and put back if it does not.
"""

from __future__ import annotations

import secrets
import shutil
from dataclasses import dataclass, field
from pathlib import Path

from core.config import TranscriptionSettings
from core.pipeline.errors import PipelineError
from core.pipeline.ffmpeg import has_audio_stream, probe_duration, run
from core.pipeline.storage import SpaceFiles
from core.results import Refused

STAGING = ".imports"  # under the spaces directory: not a valid Space id, never a Space's folder
REPLACED = ("audio.m4a", "transcript.md", "transcript.json", "chunks")  # what a new audio voids


@dataclass(frozen=True)
class Limits:
    max_bytes: int
    max_seconds: float

    @classmethod
    def of(cls, t: TranscriptionSettings) -> Limits:
        return cls(int(t.import_max_mb * 1_000_000), t.import_max_hours * 3600)


def _mb(n: float) -> str:
    return f"{n / 1_000_000:.1f} MB"


def _hours(seconds: float) -> str:
    h, m = divmod(int(round(seconds / 60)), 60)
    return f"{h} h {m:02d} min" if h else f"{m} min"


def size_problem(size: int, name: str, limits: Limits) -> Refused | None:
    """The size rules alone: the bots apply them to a file before downloading it."""
    if size == 0:
        return Refused("import_empty", f"{name} is empty: there is nothing to transcribe.")
    if size > limits.max_bytes:
        return Refused(
            "import_too_big",
            f"{name} is {_mb(size)}; an imported recording may be at most "
            f"{_mb(limits.max_bytes)} (transcription.import_max_mb).",
        )
    return None


async def check(path: Path, name: str, limits: Limits) -> Refused | float:
    """Why ``path`` cannot be imported (a refusal naming the file as ``name``), or its
    duration in seconds."""
    if path.is_dir():
        return Refused("import_folder", f"{name} is a folder, not an audio file.")
    if not path.exists():
        return Refused("import_missing", f"There is no file {name}.")
    if not path.is_file():
        return Refused("import_not_file", f"{name} is not a regular file.")
    try:
        size = path.stat().st_size
        with path.open("rb"):
            pass
    except OSError as e:
        return Refused("import_unreadable", f"{name} cannot be read ({e.strerror}).")
    problem = size_problem(size, name, limits)
    if problem is not None:
        return problem
    if not await has_audio_stream(path):
        return Refused("import_not_audio", f"{name} holds no audio stream that ffmpeg can read.")
    try:
        duration = await probe_duration(path)
    except PipelineError:
        duration = 0.0
    if duration <= 0:
        return Refused("import_not_audio", f"{name} has no readable duration.")
    if duration > limits.max_seconds:
        return Refused(
            "import_too_long",
            f"{name} lasts {_hours(duration)}; an imported recording may last at most "
            f"{_hours(limits.max_seconds)} (transcription.import_max_hours).",
        )
    return duration


@dataclass
class Staged:
    """A converted recording waiting beside the Spaces; :meth:`install` swaps it in."""

    folder: Path
    _installed: SpaceFiles | None = None
    _created: bool = False
    _moved: list[str] = field(default_factory=list)

    @property
    def audio(self) -> Path:
        return self.folder / "audio.m4a"

    @property
    def _old(self) -> Path:
        return self.folder / "old"

    def install(self, files: SpaceFiles) -> None:
        """The Space's audio becomes this recording; its former audio, transcript and chunk
        results (made from other audio) are kept aside until :meth:`done` or :meth:`undo`."""
        self._created = not files.root.exists()
        files.root.mkdir(parents=True, exist_ok=True)
        self._installed = files
        self._old.mkdir(exist_ok=True)
        for name in REPLACED:
            if (files.root / name).exists():
                (files.root / name).replace(self._old / name)
                self._moved.append(name)
        self.audio.replace(files.audio)

    def undo(self) -> None:
        """Put the Space's folder back as it was; then remove the staging folder."""
        files = self._installed
        if files is not None:
            files.audio.unlink(missing_ok=True)
            for name in self._moved:
                (self._old / name).replace(files.root / name)
            if self._created:
                shutil.rmtree(files.root, ignore_errors=True)
        self.done()

    def done(self) -> None:
        shutil.rmtree(self.folder, ignore_errors=True)
        try:
            self.folder.parent.rmdir()  # .imports, unless another import is staging
        except OSError:
            pass


async def stage(path: Path, spaces_dir: Path) -> Staged:
    """Convert the recording's first audio stream to AAC in a staging folder of its own."""
    folder = spaces_dir / STAGING / secrets.token_hex(8)
    folder.mkdir(parents=True)
    staged = Staged(folder)
    tmp = folder / ".audio.m4a"
    try:
        await run(
            "-v", "error", "-y", "-i", str(path), "-map", "0:a:0", "-vn",
            "-c:a", "aac", "-b:a", "64k", "-f", "mp4", str(tmp),
        )  # fmt: skip
        tmp.replace(staged.audio)
    except BaseException:
        staged.done()
        raise
    return staged
