"""Speech-to-text backends behind one interface; chosen by ``transcription.backend``."""

from __future__ import annotations

from pathlib import Path

from core.config import Secrets, TranscriptionSettings
from core.pipeline.transcribe.base import Segment, Transcriber


def backend_name(settings: TranscriptionSettings, secrets: Secrets) -> str:
    if settings.backend:
        return settings.backend
    key = secrets.openai_api_key
    return "openai" if key is not None and key.get_secret_value() else "offline"


def make_transcriber(
    settings: TranscriptionSettings, secrets: Secrets, data_dir: Path = Path("data")
) -> Transcriber:
    name = backend_name(settings, secrets)
    if name == "openai":
        from core.pipeline.transcribe.openai_stt import OpenAITranscriber

        return OpenAITranscriber(settings, secrets)
    from core.pipeline.transcribe.offline import OfflineTranscriber

    return OfflineTranscriber(
        model=settings.offline_model,
        data_dir=data_dir,
        language=settings.language or None,
        vad=settings.vad,
        concurrency=settings.concurrency,
    )


__all__ = ["Segment", "Transcriber", "backend_name", "make_transcriber"]
