"""`spacescribe transcribe` refuses what it cannot transcribe, precisely, before any work,
and leaves nothing under data/spaces/."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parents[2]


def _transcribe(tmp_path: Path, *args: str) -> subprocess.CompletedProcess[str]:
    env = {
        "PATH": "/usr/bin:/bin",
        "SPACESCRIBE_DATA_DIR": str(tmp_path / "data"),
        "HOME": str(tmp_path),
        "COLUMNS": "200",
    }
    return subprocess.run(
        [sys.executable, "-m", "bot.cli", "transcribe", *args],
        cwd=ROOT,
        env=env,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _file(d: Path, name: str, data: bytes) -> Path:
    (d / name).write_bytes(data)
    return d / name


@pytest.mark.parametrize(
    ("make", "message"),
    [
        (lambda d: d / "nowhere.m4a", "file not found"),
        (lambda d: d, "that is a folder"),
        (lambda d: _file(d, "empty.m4a", b""), "the file is empty"),
        (lambda d: _file(d, "notes.m4a", b"not audio at all\n"), "no audio stream in this file"),
    ],
    ids=["missing", "folder", "empty", "not-audio"],
)
def test_bad_files_get_a_specific_message(tmp_path: Path, make, message: str) -> None:  # type: ignore[no-untyped-def]
    src = tmp_path / "in"
    src.mkdir()
    r = _transcribe(tmp_path, str(make(src)))
    assert r.returncode == 2 and message in r.stderr, r.stderr + r.stdout
    spaces = tmp_path / "data" / "spaces"
    assert not spaces.exists() or not any(spaces.iterdir())


def test_a_video_without_sound_has_no_audio_stream(tmp_path: Path) -> None:
    from tests.stand_ins.audio import ffmpeg

    video = tmp_path / "silent.mp4"
    ffmpeg("-f", "lavfi", "-i", "color=c=black:s=64x64:d=1", "-c:v", "mpeg4", str(video))
    r = _transcribe(tmp_path, str(video))
    assert r.returncode == 2 and "no audio stream in this file" in r.stderr, r.stderr


def test_bad_options_are_named(tmp_path: Path) -> None:
    r = _transcribe(tmp_path, "x.m4a", "--backend", "offline", "--model", "huge")
    assert r.returncode == 2 and "--model" in r.stderr, r.stderr
    r = _transcribe(tmp_path, "x.m4a", "--backend", "offline", "--language", "de")
    assert r.returncode == 2 and "only knows English" in r.stderr, r.stderr
    r = _transcribe(tmp_path, "https://example.com/i/spaces/1AAAAAAAAAAAA")
    assert r.returncode == 2 and "Space links" in r.stderr, r.stderr
    assert not (tmp_path / "data" / "spaces").exists()
