"""Offline speech-to-text with pocketsphinx and the English model its wheel ships.

No key, no network: for development, demos and tests. Rough on real speech; the
production backend is OpenAI's.
"""

from __future__ import annotations

import asyncio
import io
import wave
from pathlib import Path

from core.pipeline.transcribe.base import Segment


def _decode(path: Path) -> list[Segment]:
    from pocketsphinx import Decoder, Segmenter

    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (16000, 1, 2):
            raise ValueError("offline backend needs 16 kHz mono 16-bit PCM")
        pcm = w.readframes(w.getnframes())
    decoder = Decoder(samprate=16000, loglevel="FATAL")
    out = []
    for utt in Segmenter(sample_rate=16000).segment(io.BytesIO(pcm)):
        decoder.start_utt()
        decoder.process_raw(utt.pcm, full_utt=True)
        decoder.end_utt()
        hyp = decoder.hyp()
        text = hyp.hypstr.strip() if hyp is not None else ""
        if text:
            out.append(Segment(float(utt.start_time), float(utt.end_time), text))
    return out


class OfflineTranscriber:
    name = "offline"
    chunk_format = "wav"
    diarizes = False

    async def transcribe(self, audio: Path, duration: float) -> list[Segment]:
        return await asyncio.to_thread(_decode, audio)
