"""An OpenAI chat-completions stand-in the real ``openai`` client talks to via base_url.

POST /v1/chat/completions: checks what a well-behaved caller must send (a bearer key, the
configured model, a prompt within ``max_prompt_tokens`` counted with the model's BPE) and
answers from the numbered passages it received, citing them like ``[n]`` — or, when
scripted, fails (500), cites passages that do not exist, or answers empty.

Structured outputs (``response_format`` of type ``json_schema``, the enrichment's calls):
the prompt's weight includes the schema; the answer is JSON of that schema built from the
transcript lines it received (takeaways and chapters at their timestamps, quotes copied from
lines) — or, when scripted, ``malformed`` (not JSON), ``wrong_schema`` (JSON missing keys),
``hallucinated_quote`` (adds a quote nobody said) or ``paraphrased_quote`` (a real line with
its words changed), or ``500``.
"""

from __future__ import annotations

import json
import re
import time
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from aiohttp import web

from core.chat import tokens
from tests.stand_ins.http import serve

_PASSAGE = re.compile(
    r"^\[(\d+)\] Space (\S+) .*? at (\S+)\n<passage>\n(.*?)\n</passage>", re.M | re.S
)
_WORD = re.compile(r"[^\W_]+")
_LINE = re.compile(r"^\[(\d+:\d{2}:\d{2})\] (?:([^:\n]{1,40}): )?(.+)$", re.M)
_NOTE = re.compile(r"^\[(\d+:\d{2}:\d{2})\] (.+)$", re.M)
HALLUCINATION = "our treasury secretly bought eleven thousand llamas last night"


def passages_in(prompt: str) -> list[tuple[int, str, str, str]]:
    return [(int(m[1]), m[2], m[3], m[4]) for m in _PASSAGE.finditer(prompt)]


@dataclass
class OpenAIChat:
    max_prompt_tokens: int = 4000
    faults: list[str] = field(default_factory=list)  # "500", "empty", "bogus_citation"
    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # contract violations seen
    url: str = ""

    def _structured(self, name: str, system: str, user: str, fault: str) -> dict[str, Any]:
        if name == "space_overview":  # reduce: keep notes' timestamps, at most 8 takeaways
            head, _, chaps = user.partition("Chapters:")
            takes = _NOTE.findall(head)
            step = max(1, len(takes) / 8)
            picked = [takes[int(i * step)] for i in range(min(8, len(takes)))]
            return {
                "takeaways": [{"text": t, "at": at} for at, t in picked],
                "chapters": [{"title": t, "at": at} for at, t in _NOTE.findall(chaps)],
            }
        lines = _LINE.findall(user)
        m = re.search(r"up to (\d+) key takeaways", system)
        take = int(m[1]) if m else 8
        step = max(1, len(lines) // max(1, take))
        takeaways = [
            {"text": "They discussed " + " ".join(text.split()[:18]).rstrip(".,") + ".", "at": at}
            for at, _spk, text in lines[::step][:take]
        ]
        chapters, last = [], -1e9
        for at, _spk, text in lines:
            h, mi, se = (int(x) for x in at.split(":"))
            t = h * 3600 + mi * 60 + se
            if t - last >= 600:
                words = [w for w in _WORD.findall(text.lower()) if len(w) > 5]
                chapters.append({"title": " ".join(words[:3]).title() or "Talk", "at": at})
                last = t
        quotes = [
            {"speaker": spk, "at": at, "text": " ".join(text.split()[:14])}
            for at, spk, text in lines[len(lines) // 3 :: max(1, len(lines) // 3)][:2]
        ]
        if fault == "hallucinated_quote" and lines:
            quotes.append({"speaker": lines[0][1], "at": lines[0][0], "text": HALLUCINATION})
        if fault == "paraphrased_quote" and lines:
            at, spk, text = lines[-1]
            words = text.split()[:12]
            words[len(words) // 2] = "absolutely"
            quotes.append({"speaker": spk, "at": at, "text": " ".join(words)})
        return {"takeaways": takeaways, "chapters": chapters, "quotes": quotes}

    def _answer(self, question: str, prompt: str) -> str:
        qwords = {w for w in _WORD.findall(question.lower()) if len(w) > 3}
        best: tuple[int, int, str] | None = None
        for n, _sid, _ts, body in passages_in(prompt):
            for line in body.splitlines():
                score = len(qwords & set(_WORD.findall(line.lower())))
                if best is None or score > best[0]:
                    best = (score, n, line)
        if best is None:
            return "The passages do not say."
        return f"According to the transcript, {best[2]} [{best[1]}]."

    async def handle(self, request: web.Request) -> web.Response:
        body = await request.json()
        messages = body.get("messages", [])
        prompt_tokens = tokens.count_messages(messages, body.get("model", "gpt-4o"))
        rf = body.get("response_format") or {}
        if rf.get("type") == "json_schema":  # the schema is part of what the model reads
            schema = json.dumps(rf["json_schema"]["schema"], separators=(",", ":"))
            prompt_tokens += tokens.count(schema, body.get("model", "gpt-4o"))
        user = next((m["content"] for m in messages if m["role"] == "user"), "")
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        self.requests.append(
            {
                "model": body.get("model"),
                "auth": request.headers.get("Authorization", ""),
                "prompt_tokens": prompt_tokens,
                "system": system,
                "user": user,
                "schema": rf.get("json_schema", {}).get("name"),
            }
        )
        if prompt_tokens > self.max_prompt_tokens:
            self.errors.append(f"prompt of {prompt_tokens} tokens > {self.max_prompt_tokens}")
        structured = rf.get("type") == "json_schema"
        if structured:
            if "untrusted" not in system.lower() and "not instructions" not in system.lower():
                self.errors.append("system message lacks the untrusted-data rule")
            if not rf["json_schema"].get("strict"):
                self.errors.append("structured output without strict mode")
        elif "cite" not in system.lower() or "untrusted" not in system.lower():
            self.errors.append("system message lacks the citation / untrusted-data rules")
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
        if structured:
            data = self._structured(rf["json_schema"]["name"], system, user, fault)
            if fault == "wrong_schema":
                data.pop("chapters", None)
            content = "{not json" if fault == "malformed" else json.dumps(data)
            completion = tokens.count(content, body.get("model", "gpt-4o"))
        else:
            question = user.split("\n", 1)[0].removeprefix("Question: ")
            content = self._answer(question, user)
            if fault == "empty":
                content = ""
            elif fault == "bogus_citation":
                content += " Also see [42]."
            completion = 60
        return web.json_response(
            {
                "id": f"chatcmpl-{len(self.requests)}",
                "object": "chat.completion",
                "created": int(time.time()),
                "model": body.get("model"),
                "choices": [
                    {
                        "index": 0,
                        "message": {"role": "assistant", "content": content},
                        "finish_reason": "stop",
                    }
                ],
                "usage": {
                    "prompt_tokens": prompt_tokens,
                    "completion_tokens": completion,
                    "total_tokens": prompt_tokens + completion,
                },
            }
        )


@asynccontextmanager
async def openai_chat(stand_in: OpenAIChat | None = None) -> AsyncIterator[OpenAIChat]:
    s = stand_in or OpenAIChat()
    app = web.Application()
    app.router.add_post("/v1/chat/completions", s.handle)
    async with serve(app) as url:
        s.url = f"{url}/v1"
        yield s
