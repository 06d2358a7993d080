"""Speech regions (Silero VAD from faster-whisper's wheel) and the exact way back in time.

The OpenAI backend sends only the speech of a chunk (long silences cut, so they are not
billed); :class:`TimeMap` maps every time the API returns, on the shortened audio, back to
the chunk's own time. The offline backend uses the same VAD inside faster-whisper.
"""

from __future__ import annotations

import bisect
import wave
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

SAMPLE_RATE = 16000
# A pause shorter than this stays in (it is part of the conversation's rhythm and costs
# little); padding keeps word onsets and tails that the VAD would clip.
MIN_SILENCE_MS = 2000
SPEECH_PAD_MS = 400


def vad_options() -> Any:
    from faster_whisper.vad import VadOptions

    return VadOptions(min_silence_duration_ms=MIN_SILENCE_MS, speech_pad_ms=SPEECH_PAD_MS)


def read_wav(path: Path) -> np.ndarray:
    """16 kHz mono 16-bit PCM as float32 in [-1, 1] (what the chunker cuts for these backends)."""
    with wave.open(str(path), "rb") as w:
        if (w.getframerate(), w.getnchannels(), w.getsampwidth()) != (SAMPLE_RATE, 1, 2):
            raise ValueError("speech-to-text needs 16 kHz mono 16-bit PCM")
        raw = w.readframes(w.getnframes())
    return np.frombuffer(raw, dtype="<i2").astype(np.float32) / 32768.0


def write_wav(path: Path, pcm: np.ndarray) -> None:
    data = (np.clip(pcm, -1.0, 1.0) * 32767.0).astype("<i2").tobytes()
    with wave.open(str(path), "wb") as w:
        w.setnchannels(1)
        w.setsampwidth(2)
        w.setframerate(SAMPLE_RATE)
        w.writeframes(data)


def speech_regions(pcm: np.ndarray) -> list[tuple[int, int]]:
    """(start, end) sample ranges of speech, padded, in order, not overlapping."""
    from faster_whisper.vad import get_speech_timestamps

    return [(int(r["start"]), int(r["end"])) for r in get_speech_timestamps(pcm, vad_options())]


@dataclass(frozen=True)
class TimeMap:
    """Kept regions of the original audio, laid end to end (in samples)."""

    regions: tuple[tuple[int, int], ...]

    @property
    def kept_seconds(self) -> float:
        return sum(e - s for s, e in self.regions) / SAMPLE_RATE

    def _kept_starts(self) -> list[int]:
        out, at = [], 0
        for s, e in self.regions:
            out.append(at)
            at += e - s
        return out

    def original(self, t: float) -> float:
        """Time ``t`` on the shortened audio → time on the original audio.

        A time exactly on a joint belongs to the region that starts there, except an end
        time, which callers map with ``end=True`` to the region that ends there."""
        return self._map(t, end=False)

    def original_end(self, t: float) -> float:
        return self._map(t, end=True)

    def _map(self, t: float, end: bool) -> float:
        if not self.regions:
            return t
        starts = self._kept_starts()
        sample = t * SAMPLE_RATE
        i = (bisect.bisect_left if end else bisect.bisect_right)(starts, sample) - 1
        i = max(0, min(i, len(self.regions) - 1))
        s, e = self.regions[i]
        offset = min(max(0.0, sample - starts[i]), float(e - s))
        return (s + offset) / SAMPLE_RATE


def keep_speech(pcm: np.ndarray) -> tuple[np.ndarray, TimeMap]:
    regions = speech_regions(pcm)
    if not regions:
        return pcm[:0], TimeMap(())
    return np.concatenate([pcm[s:e] for s, e in regions]), TimeMap(tuple(regions))
