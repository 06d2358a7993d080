"""An OpenAI chat-completions stand-in the real ``openai`` client talks to via base_url.

POST /v1/chat/completions: checks what a well-behaved caller must send (a bearer key, the
configured model, a prompt within ``max_prompt_tokens`` counted with the model's BPE) and
answers from the numbered passages it received, citing them like ``[n]`` — or, when
scripted, fails (500), cites passages that do not exist, or answers empty.
"""

from __future__ import annotations

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


def passages_in(prompt: str) -> list[tuple[int, str, str, str]]:
    return [(int(m[1]), m[2], m[3], m[4]) for m in _PASSAGE.finditer(prompt)]


@dataclass
class OpenAIChat:
    max_prompt_tokens: int = 4000
    faults: list[str] = field(default_factory=list)  # "500", "empty", "bogus_citation"
    requests: list[dict[str, Any]] = field(default_factory=list)
    errors: list[str] = field(default_factory=list)  # contract violations seen
    url: str = ""

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
        user = next((m["content"] for m in messages if m["role"] == "user"), "")
        system = next((m["content"] for m in messages if m["role"] == "system"), "")
        self.requests.append(
            {
                "model": body.get("model"),
                "auth": request.headers.get("Authorization", ""),
                "prompt_tokens": prompt_tokens,
                "system": system,
                "user": user,
            }
        )
        if prompt_tokens > self.max_prompt_tokens:
            self.errors.append(f"prompt of {prompt_tokens} tokens > {self.max_prompt_tokens}")
        if "cite" not in system.lower() or "untrusted" not in system.lower():
            self.errors.append("system message lacks the citation / untrusted-data rules")
        fault = self.faults.pop(0) if self.faults else ""
        if fault == "500":
            return web.json_response({"error": {"message": "boom"}}, status=500)
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
