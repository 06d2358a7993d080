"""How an enrichment reads: the Markdown block atop transcript.md, and the overview a
delivery message carries (takeaways and chapters, within a platform's length limit)."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from core.enrich.model import Enrichment

EXTRACTIVE_NOTE = (
    "Extractive overview (no AI model was used): takeaways, chapter titles and quotes are "
    "taken from the transcript as said."
)


def hms(seconds: float) -> str:
    s = int(seconds)
    return f"{s // 3600:02d}:{s % 3600 // 60:02d}:{s % 60:02d}"


def markdown_block(data: dict[str, Any] | None) -> list[str]:
    """Lines between the transcript's header and its body (empty without an enrichment)."""
    if not data:
        return []
    e = Enrichment.from_json(data)
    lines = ["## Overview", ""]
    if e.extractive:
        lines += [f"_{EXTRACTIVE_NOTE}_", ""]
    if e.takeaways:
        lines += ["### Key takeaways", ""]
        lines += [f"- [{hms(t.start)}] {t.text}" for t in e.takeaways] + [""]
    if e.chapters:
        lines += ["### Chapters", ""]
        lines += [f"- [{hms(c.start)}] {c.title}" for c in e.chapters] + [""]
    if e.quotes:
        lines += ["### Notable quotes", ""]
        for q in e.quotes:
            who = f" — {q.speaker}" if q.speaker else ""
            lines += [f"> “{q.text}”{who} [{hms(q.start)}]", ""]
    return lines + ["## Transcript", ""]


def overview(
    e: Enrichment,
    limit: int,
    *,
    bold: Callable[[str], str],
    escape: Callable[[str], str],
) -> str:
    """Takeaways then chapters, cut to fit ``limit`` characters (markup included): chapters
    that do not fit are summed up as "… N more"; takeaways are shortened before dropped."""
    head = [bold("Key takeaways")] if e.takeaways else []
    takes = [f"• [{hms(t.start)}] {escape(t.text)}" for t in e.takeaways]
    chaps = [f"[{hms(c.start)}] {escape(c.title)}" for c in e.chapters]
    note = [escape("(extractive: no AI model)")] if e.extractive else []

    def build(takes: list[str], n_chaps: int) -> str:
        lines = head + takes
        if chaps:
            lines += ["", bold("Chapters")] + chaps[:n_chaps]
            if n_chaps < len(chaps):
                lines.append(f"… {len(chaps) - n_chaps} more in the transcript")
        return "\n".join(lines + note)

    n = len(chaps)
    while n > 0 and len(build(takes, n)) > limit:
        n -= 1
    while len(build(takes, n)) > limit and takes:
        longest = max(range(len(takes)), key=lambda i: len(takes[i]))
        if len(takes[longest]) > 80:
            takes[longest] = takes[longest][: len(takes[longest]) * 2 // 3].rstrip() + "…"
        else:
            takes.pop()
    text = build(takes, n)
    return text if len(text) <= limit else ""
