"""OpenAI speech-to-text through the official client (``OPENAI_BASE_URL`` respected).

- ``whisper-1``: ``verbose_json`` with segment timestamps.
- ``gpt-4o-transcribe`` / ``gpt-4o-mini-transcribe``: ``json`` text only, one segment per chunk.
- ``gpt-4o-transcribe-diarize``: ``diarized_json``, segments with speaker labels.

The client retries 429 and 5xx itself, honouring ``Retry-After``; what still fails becomes a
retryable :class:`PipelineError` (the queue retries the job later, finished chunks kept).
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

from core.config import Secrets, TranscriptionSettings
from core.logging import redact
from core.pipeline.errors import PipelineError
from core.pipeline.transcribe.base import Segment

MAX_RETRIES = 5
TIMEOUT_SECONDS = 600.0


def _get(obj: Any, key: str, default: Any = None) -> Any:
    return obj.get(key, default) if isinstance(obj, dict) else getattr(obj, key, default)


class OpenAITranscriber:
    name = "openai"
    chunk_format = "m4a"

    def __init__(self, settings: TranscriptionSettings, secrets: Secrets) -> None:
        from openai import AsyncOpenAI

        self.model = settings.model
        self.diarizes = "diarize" in self.model
        key = secrets.openai_api_key.get_secret_value() if secrets.openai_api_key else None
        self.client = AsyncOpenAI(
            api_key=key,
            base_url=secrets.openai_base_url,
            max_retries=MAX_RETRIES,
            timeout=TIMEOUT_SECONDS,
        )

    async def transcribe(self, audio: Path, duration: float) -> list[Segment]:
        import openai

        kwargs: dict[str, Any] = {"model": self.model}
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
