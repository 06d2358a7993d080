"""Participants and speaker profiles (talk time, segments, first/last seen) from segments."""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from core.pipeline.transcribe.base import Segment

UNKNOWN = "Speaker"


def profiles(segments: list[Segment]) -> list[dict[str, Any]]:
    acc: dict[str, dict[str, Any]] = {}
    for s in segments:
        name = s.speaker or UNKNOWN
        p = acc.setdefault(
            name,
            {
                "speaker": name,
                "talk_seconds": 0.0,
                "segments": 0,
                "first_seen": s.start,
                "last_seen": s.end,
            },
        )
        p["talk_seconds"] += max(0.0, s.end - s.start)
        p["segments"] += 1
        p["first_seen"] = min(p["first_seen"], s.start)
        p["last_seen"] = max(p["last_seen"], s.end)
    out = sorted(acc.values(), key=lambda p: -p["talk_seconds"])
    for p in out:
        p["talk_seconds"] = round(p["talk_seconds"], 1)
        p["first_seen"], p["last_seen"] = round(p["first_seen"], 1), round(p["last_seen"], 1)
    return out


def participants(
    segments: list[Segment], creator: str | None = None, named: Sequence[str] = ()
) -> list[str]:
    """The host first when known, then the speakers X names (its metadata), then speaker
    labels in order of appearance. A diarizing model's labels ("Speaker 1") are never mapped
    to X's names: which voice is whose is not known, and a guessed name is worse than none."""
    names: list[str] = [creator] if creator else []
    names += [n for n in dict.fromkeys(named) if n and n not in names]
    for s in segments:
        if s.speaker and s.speaker not in names:
            names.append(s.speaker)
    return names
