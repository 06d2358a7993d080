"""An OpenAI audio-transcriptions stand-in the real ``openai`` client talks to via base_url.

POST /v1/audio/transcriptions (multipart): answers ``verbose_json`` (segments),
``json`` (text) or ``diarized_json`` (segments with speakers). Behaviour is scriptable:
a queue of faults (429 with Retry-After, 500, a hang) consumed one request at a time,
an optional latency proportional to the uploaded audio's length, and a gate: while
``gate`` is cleared, every request waits for it (a drill holds jobs mid-transcription).

With ``bursts=True`` it decodes the upload (real ffmpeg) and answers one segment per burst of
sound, timed on the uploaded audio: a client that cuts silence must map those times back.
Every request records the uploaded audio's decoded length (``seconds``): what would be billed.
"""

from __future__ import annotations

import asyncio
import subprocess
import tempfile
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

import numpy as np
from aiohttp import web

from core.pipeline.ffmpeg import ffmpeg_exe
from tests.stand_ins.http import serve


def decode_pcm(data: bytes, suffix: str) -> np.ndarray:
    """The upload as 16 kHz mono float samples, decoded by ffmpeg (from a file: MP4 needs
    seeking)."""
    with tempfile.NamedTemporaryFile(suffix=suffix) as f:
        f.write(data)
        f.flush()
        raw = subprocess.run(
            [
                ffmpeg_exe(),
                "-v",
                "error",
                "-i",
                f.name,
                "-f",
                "s16le",
                "-ac",
                "1",
                "-ar",
                "16000",
                "-",
            ],
            check=True,
            capture_output=True,
        ).stdout
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def bursts(pcm: np.ndarray, min_gap: float = 0.6, frame: float = 0.02) -> list[tuple[float, float]]:
    """(start, end) seconds of sound, frames louder than -40 dBFS, gaps under min_gap joined."""
    n = int(16000 * frame)
    frames = pcm[: len(pcm) // n * n].reshape(-1, n)
    loud = np.sqrt((frames**2).mean(axis=1)) > 0.01
    out: list[tuple[float, float]] = []
    for i in np.flatnonzero(loud):
        t0, t1 = i * frame, (i + 1) * frame
        if out and t0 - out[-1][1] < min_gap:
            out[-1] = (out[-1][0], t1)
        else:
            out.append((t0, t1))
    return out


@dataclass
class OpenAIAudio:
    faults: list[str] = field(default_factory=list)  # "429", "500", "hang", "ok"
    latency_per_audio_second: float = 0.0
    text_for: Callable[[int, float], str] = lambda n, secs: f"chunk {n} says hello"
    requests: list[dict[str, Any]] = field(default_factory=list)
    url: str = ""
    bursts: bool = False
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
        entry: dict[str, Any] = {
            "model": form.get("model"),
            "format": form.get("response_format"),
            "language": form.get("language"),
            "bytes": len(data),
            "auth": auth,
            "filename": fname,
        }
        self.requests.append(entry)  # before any await: n stays this request's number
        pcm = await asyncio.to_thread(decode_pcm, data, "." + fname.rsplit(".", 1)[-1])
        entry["seconds"] = len(pcm) / 16000
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
        secs = len(pcm) / 16000
        if self.latency_per_audio_second:
            await asyncio.sleep(secs * self.latency_per_audio_second)
        text = self.text_for(n, secs)
        fmt = form.get("response_format")
        if fmt == "verbose_json" and self.bursts:
            segs = [
                {"id": i, "start": a, "end": b, "text": f"burst {i}."}
                for i, (a, b) in enumerate(bursts(pcm))
            ]
            return web.json_response({"text": text, "duration": secs, "segments": segs})
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
