"""An OpenAI audio-transcriptions stand-in the real ``openai`` client talks to via base_url.

POST /v1/audio/transcriptions (multipart): answers ``verbose_json`` (segments),
``json`` (text) or ``diarized_json`` (segments with speakers). Behaviour is scriptable:
a queue of faults (429 with Retry-After, 500, a hang) consumed one request at a time,
an optional latency proportional to the uploaded audio's length, and a gate: while
``gate`` is cleared, every request waits for it (a drill holds jobs mid-transcription).
"""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from tests.stand_ins.http import serve

BYTES_PER_SECOND = {".wav": 32_000, ".mp3": 32_000 / 8, ".m4a": 64_000 / 8}


def audio_seconds(filename: str, size: int) -> float:
    """Length from size: 16 kHz PCM, the 32 kb/s MP3 fallback, or 64 kb/s AAC (as made)."""
    return size / BYTES_PER_SECOND.get(filename[-4:], 64_000 / 8)


@dataclass
class OpenAIAudio:
    faults: list[str] = field(default_factory=list)  # "429", "500", "hang", "ok"
    latency_per_audio_second: float = 0.0
    text_for: Callable[[int, float], str] = lambda n, secs: f"chunk {n} says hello"
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    gate: asyncio.Event = field(default_factory=asyncio.Event)

    def __post_init__(self) -> None:
        self.gate.set()  # open unless a test closes it

    async def handle(self, request: web.Request) -> web.Response:
        form = await request.post()
        upload = form["file"]
        data = upload.file.read()  # type: ignore[union-attr]
        fname = upload.filename  # type: ignore[union-attr]
        await self.gate.wait()
        n = len(self.requests)
        auth = request.headers.get("Authorization", "")
        self.requests.append(
            {
                "model": form.get("model"),
                "format": form.get("response_format"),
                "bytes": len(data),
                "auth": auth,
                "filename": fname,
            }
        )
        if self.faults:
            fault = self.faults.pop(0)
            if fault == "429":
                return web.json_response(
                    {"error": {"message": "rate limited", "type": "rate_limit"}},
                    status=429,
                    headers={"Retry-After": "0.1"},
                )
            if fault == "500":
                return web.json_response({"error": {"message": "boom"}}, status=500)
            if fault == "hang":
                await asyncio.sleep(3600)
        secs = audio_seconds(fname, len(data))
        if self.latency_per_audio_second:
            await asyncio.sleep(secs * self.latency_per_audio_second)
        text = self.text_for(n, secs)
        fmt = form.get("response_format")
        if fmt == "verbose_json":
            return web.json_response(
                {
                    "task": "transcribe",
                    "language": "english",
                    "duration": secs,
                    "text": text,
                    "segments": [
                        {"id": 0, "start": 0.5, "end": max(1.0, secs - 0.5), "text": text}
                    ],
                }
            )
        if fmt == "diarized_json":
            half = secs / 2
            return web.json_response(
                {
                    "text": text,
                    "segments": [
                        {"start": 0.2, "end": half, "text": text + " (first)", "speaker": "A"},
                        {"start": half, "end": secs, "text": text + " (second)", "speaker": "B"},
                    ],
                }
            )
        return web.json_response({"text": text})


@asynccontextmanager
async def openai_audio(stand_in: OpenAIAudio | None = None) -> AsyncIterator[OpenAIAudio]:
    s = stand_in or OpenAIAudio()
    app = web.Application(client_max_size=64 * 1024 * 1024)
    app.router.add_post("/v1/audio/transcriptions", s.handle)
    async with serve(app) as url:
        s.url = url + "/v1"
        yield s
