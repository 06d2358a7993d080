"""How the service presents what it sells to catalogues and agents: its name, tags, and one
example request and answer per kind sold. The x402 Bazaar declarations of the web API
(``adapters/web/discovery.py``) and the MCP tools (``adapters/mcp``) both publish these."""

from __future__ import annotations

from typing import Any

from core.spaces import canonical_url

SERVICE_NAME = "spacescribe"
SERVICE_TAGS = ["transcripts", "x-spaces", "podcasts", "ai-chat", "usdc"]

_SPACE = "1RDxlAoOeQRKL"
_WALLET = "0x" + "ab" * 20
_TX = "0x" + "cd" * 32
_VIEW = {
    "space_id": _SPACE,
    "url": canonical_url(_SPACE),
    "title": "Weekly markets call",
    "status": "completed",
    "creator": "host",
    "duration_seconds": 3600,
    "participants": ["host", "guest"],
    "queue_position": None,
    "error": None,
    "completed_at": "2026-11-30T12:00:00+00:00",
    "chapters": ["Opening", "Rates"],
}
_PAID = {"paid": True, "transaction": _TX, "payer": _WALLET}
OUTPUTS: dict[str, dict[str, Any]] = {
    "transcription": {**_PAID, "space": _VIEW},
    "chat_unlock": {**_PAID, "space": _VIEW},
    "chat_query": {
        **_PAID,
        "answer": {
            "session_id": "0f8fad5b-d9cb-469f-a165-70867728950e",
            "question": "What was decided about rates?",
            "answer": "They agreed to hold rates [1].",
            "sources": [
                {
                    "spaceId": _SPACE,
                    "start": 754.0,
                    "end": 771.5,
                    "speaker": "host",
                    "excerpt": "we hold rates until March",
                    "url": canonical_url(_SPACE),
                }
            ],
            "model": "gpt-4o",
            "tokens_used": 812,
        },
    },
}
EXAMPLES: dict[str, dict[str, Any]] = {
    "transcription": {"space": canonical_url(_SPACE)},
    "chat_unlock": {"space": _SPACE},
    "chat_query": {"question": "What was decided about rates?", "spaces": [_SPACE]},
}
