"""Word error rate against a reference text (tests and ``bench.stt_quality``)."""

from __future__ import annotations

import re
from pathlib import Path

LIBRIVOX = Path("/usr/share/pocketsphinx/test/data/librivox")  # Debian pocketsphinx-testdata
_SPOKEN = {"mr": "mister", "mrs": "missus", "dr": "doctor", "st": "saint"}


def words(text: str) -> list[str]:
    """Lowercase words without punctuation; hyphens split words; titles spelled out."""
    text = re.sub(r"[-–—]", " ", text.lower())
    text = re.sub(r"[^a-z0-9' ]+", " ", text)
    return [_SPOKEN.get(w, w) for w in text.replace("'", "").split()]


def edit_distance(ref: list[str], hyp: list[str]) -> int:
    prev = list(range(len(hyp) + 1))
    for i, r in enumerate(ref, 1):
        cur = [i] + [0] * len(hyp)
        for j, h in enumerate(hyp, 1):
            cur[j] = min(prev[j] + 1, cur[j - 1] + 1, prev[j - 1] + (r != h))
        prev = cur
    return prev[-1]


def wer(refs: list[str], hyps: list[str]) -> float:
    """Corpus WER: edits summed over utterances / reference words summed."""
    errors = sum(edit_distance(words(r), words(h)) for r, h in zip(refs, hyps, strict=True))
    return errors / max(1, sum(len(words(r)) for r in refs))


def librivox_clips() -> list[tuple[Path, str]]:
    """(wav, reference text) of each clip, from the package's ``transcription`` file."""
    out = []
    for line in (LIBRIVOX / "transcription").read_text().splitlines():
        m = re.fullmatch(r"\s*<s>(.*)</s>\s*\((\S+)\)\s*", line)
        if m:
            out.append((LIBRIVOX / f"{m.group(2)}.wav", m.group(1).strip()))
    return out
