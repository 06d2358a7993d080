"""Participants and speaker profiles (talk time, segments, first/last seen) from segments."""

from __future__ import annotations

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


def participants(segments: list[Segment], creator: str | None = None) -> list[str]:
    """Named speakers in order of appearance (the host first when known)."""
    names: list[str] = [creator] if creator else []
    for s in segments:
        if s.speaker and s.speaker not in names:
            names.append(s.speaker)
    return names
