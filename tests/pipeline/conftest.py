"""Pipeline fixtures: real speech (espeak-ng), a Space-like HLS server, a test resolver."""

from __future__ import annotations

from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from core.context import Context
from core.pipeline.media import SpaceMeta
from tests.stand_ins.audio import concat_wavs, hls_server, make_hls, speech_wav

SENTENCES = [
    "Good morning and welcome to the weekly space about the weather.",
    "Today we talk about the market and the weather in the city.",
    "Thank you all for listening and see you next week.",
]


@pytest.fixture(scope="session")
def speech(tmp_path_factory: pytest.TempPathFactory) -> Path:
    d = tmp_path_factory.mktemp("speech")
    parts = [speech_wav(s, d / f"p{i}.wav") for i, s in enumerate(SENTENCES)]
    return concat_wavs(parts, d / "speech.wav", gap_seconds=1.0)


@pytest.fixture(scope="session")
def hls_root(speech: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("hls")
    make_hls(speech, root / "space")
    return root


@pytest.fixture
async def hls_url(hls_root: Path) -> AsyncIterator[str]:
    async with hls_server(hls_root) as url:
        yield url


class LocalResolver:
    """Points the real yt-dlp download at the local HLS server (production: X's)."""

    def __init__(self, base: str, live: bool = False, path: str = "/space/playlist.m3u8") -> None:
        self.base, self.live, self.path = base, live, path
        self.calls: list[str] = []

    async def resolve(self, space_id: str) -> SpaceMeta:
        self.calls.append(space_id)
        return SpaceMeta(
            space_id=space_id,
            title="Weekly weather space",
            creator="alice",
            started_at=None,
            duration_seconds=None,
            live=self.live,
            replay_available=not self.live,
            media_url=self.base + self.path,
        )


@pytest.fixture
def resolver(ctx: Context, hls_url: str) -> LocalResolver:
    r = LocalResolver(hls_url)
    ctx.wiring.resolver = r
    return r
