"""transcript.srt and transcript.vtt from the segments.

Cues follow common subtitle rules: at most 2 lines of 42 characters and 7 seconds each.
A segment's time is shared among its words by length (no word timings from every backend),
a cue never outlasts its segment, and cues never overlap. The speaker's name starts the
first cue of each turn when the backend knows speakers ("Alice: …").
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

MAX_LINE = 42
MAX_LINES = 2
MAX_SECONDS = 7.0
MIN_SECONDS = 0.5


@dataclass(frozen=True)
class Cue:
    start: float
    end: float
    lines: list[str]


def _pieces(word: str) -> list[str]:
    return [word[i : i + MAX_LINE] for i in range(0, len(word), MAX_LINE)] or [word]


def _wrap(words: list[str]) -> list[str]:
    lines: list[str] = []
    for w in words:
        if lines and len(lines[-1]) + 1 + len(w) <= MAX_LINE:
            lines[-1] += " " + w
        else:
            lines.append(w)
    return lines


def _segment_cues(seg: dict[str, Any], prefix: str) -> list[Cue]:
    words = [p for w in str(seg.get("text") or "").split() for p in _pieces(w)]
    if not words:
        return []
    start, end = float(seg["start"]), max(float(seg["end"]), float(seg["start"]))
    if prefix and len(prefix) + 1 + len(words[0]) <= MAX_LINE:
        words[0] = f"{prefix} {words[0]}"
    elif prefix:
        words.insert(0, prefix[:MAX_LINE])
    weights = [len(w) + 1 for w in words]
    total = sum(weights)
    times = [start]
    for wt in weights:  # word i spans times[i]..times[i+1]
        times.append(times[-1] + (end - start) * wt / total)
    cues: list[Cue] = []
    i = 0
    while i < len(words):
        j = i + 1
        while j < len(words):
            fits = len(_wrap(words[i : j + 1])) <= MAX_LINES
            if not fits or times[j + 1] - times[i] > MAX_SECONDS:
                break
            j += 1
        cues.append(Cue(times[i], min(times[j], times[i] + MAX_SECONDS), _wrap(words[i:j])))
        i = j
    return cues


def cues(segments: list[dict[str, Any]]) -> list[Cue]:
    out: list[Cue] = []
    last_speaker: str | None = None
    for seg in sorted(segments, key=lambda s: (float(s["start"]), float(s["end"]))):
        speaker = seg.get("speaker")
        prefix = f"{speaker}:" if speaker and speaker != last_speaker else ""
        made = _segment_cues(seg, prefix)
        if made:
            last_speaker = speaker or last_speaker
        out.extend(made)
    fixed: list[Cue] = []
    for n, c in enumerate(out):
        start = max(c.start, fixed[-1].end if fixed else 0.0)
        nxt = out[n + 1].start if n + 1 < len(out) else None
        end = max(c.end, start + MIN_SECONDS)
        end = min(end, start + MAX_SECONDS)
        if nxt is not None and nxt > start:
            end = min(end, nxt)
        if end <= start:  # crowded by the previous cue: a short cue just after it
            end = start + 0.1
        fixed.append(Cue(start, end, c.lines))
    return fixed


def _ts(seconds: float, sep: str) -> str:
    ms = int(round(seconds * 1000))
    h, rem = divmod(ms, 3_600_000)
    m, rem = divmod(rem, 60_000)
    s, ms = divmod(rem, 1000)
    return f"{h:02d}:{m:02d}:{s:02d}{sep}{ms:03d}"


def _clean(line: str) -> str:
    # "-->" would end a cue's timing line early in both formats; blank lines end a cue
    return line.replace("-->", "->").strip()


def to_srt(segments: list[dict[str, Any]]) -> str:
    blocks = []
    for n, c in enumerate(cues(segments), 1):
        text = "\n".join(_clean(x) for x in c.lines)
        blocks.append(f"{n}\n{_ts(c.start, ',')} --> {_ts(c.end, ',')}\n{text}\n")
    return "\n".join(blocks)


def to_vtt(segments: list[dict[str, Any]]) -> str:
    blocks = ["WEBVTT\n"]
    for c in cues(segments):
        text = "\n".join(_clean(x).replace("&", "&amp;").replace("<", "&lt;") for x in c.lines)
        blocks.append(f"{_ts(c.start, '.')} --> {_ts(c.end, '.')}\n{text}\n")
    return "\n".join(blocks)
