"""Enrichment benchmark (``python -m bench enrich``).

For synthetic 1-hour and 3-hour Spaces (150 words a minute, four speakers, topic changes):
- the OpenAI path against the local chat stand-in (same BPE counting, structured outputs):
  total tokens spent vs the transcript's own tokens (transcript.md without overview), the
  largest prompt (messages + JSON schema), calls; targets ≤ 1.3× and ≤ 8,000;
- the offline extractive path: wall and CPU time for the 3-hour Space; target ≤ 5 s.
The stand-in's answers are about as long as a model's (takeaways of ~20 words, titles, short
quotes), so completion tokens are realistic in size, not in wording.
"""

from __future__ import annotations

import asyncio
import time

from openai import AsyncOpenAI

from core.chat import tokens
from core.enrich import extractive, structured
from core.pipeline.render import TranscriptDoc, to_markdown
from core.pipeline.transcribe.base import Segment
from tests.enrich.synth import make_space
from tests.stand_ins.openai_chat import OpenAIChat, openai_chat

MODEL = "gpt-4o-mini"
MAX_PROMPT = 8000


def transcript_tokens(segs: list[dict], hours: float) -> int:  # type: ignore[type-arg]
    doc = TranscriptDoc(
        "1BenchSpace01", "Bench", None, "https://x.com/i/spaces/1BenchSpace01", None,
        hours * 3600, "bench", [], [], [Segment.from_json(s) for s in segs],
    )  # fmt: skip
    return tokens.count(to_markdown(doc), MODEL)


async def openai_figures(hours: float) -> dict[str, float]:
    segs, _ = make_space(hours)
    own = transcript_tokens(segs, hours)
    async with openai_chat(OpenAIChat(max_prompt_tokens=MAX_PROMPT)) as chat:
        async with AsyncOpenAI(api_key="sk-bench", base_url=chat.url) as client:
            e = await structured.enrich(
                client, segs, hours * 3600, model=MODEL, max_prompt_tokens=MAX_PROMPT
            )
        assert not chat.errors, chat.errors
        calls = len(chat.requests)
    return {
        "hours": hours,
        "transcript_tokens": own,
        "tokens_used": e.tokens_used,
        "ratio": e.tokens_used / own,
        "per_audio_hour": e.tokens_used / hours,
        "largest_prompt": e.largest_prompt_tokens,
        "calls": calls,
        "takeaways": len(e.takeaways),
        "chapters": len(e.chapters),
        "quotes": len(e.quotes),
    }


def offline_figures(hours: float) -> dict[str, float]:
    segs, _ = make_space(hours)
    w0, c0 = time.perf_counter(), time.process_time()
    e = extractive.enrich(segs, hours * 3600)
    return {
        "hours": hours,
        "segments": len(segs),
        "wall_s": time.perf_counter() - w0,
        "cpu_s": time.process_time() - c0,
        "chapters": len(e.chapters),
        "takeaways": len(e.takeaways),
        "quotes": len(e.quotes),
    }


def main() -> None:
    print("OpenAI path (structured outputs, map-reduce) against the chat stand-in:")
    for hours in (1.0, 3.0):
        f = asyncio.run(openai_figures(hours))
        ok = f["ratio"] <= 1.3 and f["largest_prompt"] <= MAX_PROMPT
        print(
            f"  {hours:.0f} h: transcript {f['transcript_tokens']:,} tokens, spent "
            f"{f['tokens_used']:,} ({f['ratio']:.2f}×, {f['per_audio_hour']:,.0f} per audio "
            f"hour) in {f['calls']} calls, largest prompt {f['largest_prompt']:,}; "
            f"{f['takeaways']} takeaways, {f['chapters']} chapters, {f['quotes']} quotes "
            f"[{'ok' if ok else 'OVER TARGET'}]"
        )
    print("Offline extractive path:")
    for hours in (1.0, 3.0):
        f = offline_figures(hours)
        print(
            f"  {hours:.0f} h ({f['segments']} segments): {f['wall_s']:.2f} s wall, "
            f"{f['cpu_s']:.2f} s CPU; {f['chapters']} chapters, {f['takeaways']} takeaways, "
            f"{f['quotes']} quotes [{'ok' if f['wall_s'] <= 5 else 'OVER TARGET'}]"
        )


if __name__ == "__main__":
    main()
