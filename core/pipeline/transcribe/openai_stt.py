"""OpenAI speech-to-text through the official client (``OPENAI_BASE_URL`` respected).

- ``whisper-1``: ``verbose_json`` with segment timestamps.
- ``gpt-4o-transcribe`` / ``gpt-4o-mini-transcribe``: ``json`` text only, one segment per chunk.
- ``gpt-4o-transcribe-diarize``: ``diarized_json``, segments with speaker labels.

With ``transcription.vad`` (default) a chunk is cut as 16 kHz PCM, Silero VAD keeps only
its speech (pauses of 2 s and more removed), that speech is sent as AAC, and every returned
time is mapped back to the chunk's own time (:class:`TimeMap`): long silences are not billed.
A chunk without speech makes no request.

The client retries 429 and 5xx itself, honouring ``Retry-After``; what still fails becomes a
retryable :class:`PipelineError` (the queue retries the job later, finished chunks kept).
"""

from __future__ import annotations

import asyncio
from pathlib import Path
from typing import Any

from core.config import Secrets, TranscriptionSettings
from core.logging import redact
from core.pipeline.errors import PipelineError
from core.pipeline.ffmpeg import run
from core.pipeline.transcribe.base import Segment
from core.pipeline.transcribe.speech import TimeMap, keep_speech, read_wav, write_wav

MAX_RETRIES = 5
TIMEOUT_SECONDS = 600.0


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


# speech-only audio sent to the API: AAC in MP4, mono 16 kHz (what Whisper hears anyway)
SPEECH_FORMAT = ["-ac", "1", "-ar", "16000", "-c:a", "aac", "-b:a", "48k", "-f", "mp4"]


def _speech_only(audio: Path) -> tuple[Path | None, TimeMap]:
    """Write the chunk's speech beside it (as PCM); None when it has no speech."""
    speech, tmap = keep_speech(read_wav(audio))
    if not tmap.regions:
        return None, tmap
    out = audio.with_name(audio.stem + ".speech.wav")
    write_wav(out, speech)
    return out, tmap


class OpenAITranscriber:
    name = "openai"

    def __init__(self, settings: TranscriptionSettings, secrets: Secrets) -> None:
        from openai import AsyncOpenAI

        self.model = settings.model
        self.language = settings.language or None
        self.vad = settings.vad
        # without VAD the AAC stream is copied as is; with it, PCM is cut to find speech
        self.chunk_format = "wav" if self.vad else "m4a"
        self.sent_seconds = 0.0  # what was billed, for the cost report
        self.diarizes = "diarize" in self.model
        key = secrets.openai_api_key.get_secret_value() if secrets.openai_api_key else None
        self.client = AsyncOpenAI(
            api_key=key,
            base_url=secrets.openai_base_url,
            max_retries=MAX_RETRIES,
            timeout=TIMEOUT_SECONDS,
        )

    async def transcribe(self, audio: Path, duration: float) -> list[Segment]:
        if not self.vad:
            self.sent_seconds += duration
            return await self._request(audio, duration)
        speech_wav, tmap = await asyncio.to_thread(_speech_only, audio)
        if speech_wav is None:
            return []
        upload = speech_wav.with_suffix(".m4a")
        try:
            await run("-v", "error", "-y", "-i", str(speech_wav), *SPEECH_FORMAT, str(upload))
            self.sent_seconds += tmap.kept_seconds
            segs = await self._request(upload, tmap.kept_seconds)
        finally:
            speech_wav.unlink(missing_ok=True)
            upload.unlink(missing_ok=True)
        return [
            Segment(tmap.original(s.start), tmap.original_end(s.end), s.text, s.speaker)
            for s in segs
        ]

    async def _request(self, audio: Path, duration: float) -> list[Segment]:
        import openai

        kwargs: dict[str, Any] = {"model": self.model}
        if self.language:
            kwargs["language"] = self.language
        if self.model == "whisper-1":
            kwargs.update(response_format="verbose_json", timestamp_granularities=["segment"])
        elif self.diarizes:
            kwargs.update(response_format="diarized_json", chunking_strategy="auto")
        else:
            kwargs.update(response_format="json")
        try:
            with audio.open("rb") as f:
                result = await self.client.audio.transcriptions.create(file=f, **kwargs)
        except openai.AuthenticationError:
            raise PipelineError("the OpenAI key was rejected", retryable=False) from None
        except openai.BadRequestError as e:
            raise PipelineError(
                # redacted before it is cut: the provider may echo the key in its message
                f"OpenAI refused the audio ({redact(e.message)[:150]})",
                retryable=False,
            ) from None
        except openai.APIError as e:
            raise PipelineError(f"speech-to-text failed ({type(e).__name__})") from None
        segments = _get(result, "segments")
        if segments:
            return [
                Segment(
                    float(_get(s, "start", 0.0)),
                    float(_get(s, "end", 0.0)),
                    str(_get(s, "text", "")).strip(),
                    _get(s, "speaker"),
                )
                for s in segments
                if str(_get(s, "text", "")).strip()
            ]
        text = str(_get(result, "text", "") or "").strip()
        return [Segment(0.0, duration, text)] if text else []
