"""Issue 14: the HTTP API speaks one error shape, ``{"error": code, "message": text}``,
validation and routing errors included; a body that is not JSON is 415; the published
OpenAPI schema states the limits the server enforces; a question of only control characters
is refused before any 402. On a real socket (uvicorn), both engines."""

from __future__ import annotations

from typing import Any

import httpx
import pytest

from core.context import Context
from tests.payments.test_x402_api import server  # noqa: F401

SPACE = "1RDxlAoOeQRKL"


def _shape(r: httpx.Response, status: int, code: str) -> dict[str, Any]:
    assert r.status_code == status, r.text
    assert r.headers["content-type"].startswith("application/json"), r.headers
    data = r.json()
    assert "detail" not in data, data
    assert data["error"] == code and isinstance(data["message"], str) and data["message"], data
    return data


@pytest.fixture
async def api(server: str) -> Any:  # noqa: F811
    async with httpx.AsyncClient(base_url=server, timeout=30) as c:
        yield c


async def test_validation_and_routing_errors_have_the_one_shape(api: httpx.AsyncClient) -> None:
    data = _shape(await api.post("/x402/transcribe", json={}), 422, "invalid_request")
    assert "body.space" in data["message"] and data["details"][0]["type"] == "missing"
    data = _shape(
        await api.post("/x402/unlock", json={"space": SPACE, "owner": "me"}), 422, "invalid_request"
    )
    assert data["details"][0]["type"] == "extra_forbidden" and "owner" in data["message"]
    data = _shape(
        await api.post(
            "/x402/transcribe", content=b"{not json", headers={"content-type": "application/json"}
        ),
        422,
        "invalid_request",
    )
    assert data["details"][0]["type"] == "json_invalid"
    data = _shape(
        await api.get(
            f"/api/spaces/{SPACE}/transcript", headers={"X-Wallet-Timestamp": "yesterday"}
        ),
        422,
        "invalid_request",
    )
    assert "x-wallet-timestamp" in data["message"]
    _shape(await api.get("/api/nothing-here"), 404, "not_found")
    _shape(await api.get("/no/such/route"), 404, "not_found")
    _shape(await api.delete("/x402/transcribe"), 405, "method_not_allowed")


async def test_a_body_that_is_not_json_is_415(api: httpx.AsyncClient) -> None:
    for ctype, body in (
        ("text/plain", b'{"space": "1RDxlAoOeQRKL"}'),
        ("application/x-www-form-urlencoded", b"space=1RDxlAoOeQRKL"),
        ("multipart/form-data; boundary=x", b"--x--"),
    ):
        r = await api.post("/x402/transcribe", content=body, headers={"content-type": ctype})
        data = _shape(r, 415, "unsupported_media_type")
        assert "application/json" in data["message"], data
    # JSON with a charset, or a +json type, is JSON
    r = await api.post(
        "/x402/unlock",
        content=b'{"space": "1RDxlAoOeQRKL"}',
        headers={"content-type": "application/json; charset=utf-8"},
    )
    assert r.status_code == 402, r.text


async def test_published_limits_are_the_enforced_ones(
    api: httpx.AsyncClient, pay_ctx: Context
) -> None:
    c = pay_ctx.settings.chat
    schema = (await api.get("/openapi.json")).json()
    props = schema["components"]["schemas"]["ChatRequest"]["properties"]
    assert props["question"]["maxLength"] == c.max_question_chars == 1000
    assert props["spaces"]["maxItems"] == c.max_spaces
    ok = {"question": "q" * c.max_question_chars, "spaces": [SPACE]}
    assert (await api.post("/x402/chat", json=ok)).status_code == 402
    for question in ("q" * (c.max_question_chars + 1), "q" * 20_001):
        r = await api.post("/x402/chat", json={"question": question, "spaces": [SPACE]})
        _shape(r, 400, "question_too_long")
    _shape(
        await api.post(
            "/x402/chat", json={"question": "q", "spaces": [SPACE] * (c.max_spaces + 1)}
        ),
        400,
        "too_many_spaces",
    )
    _shape(
        await api.post("/x402/chat", json={"question": "q", "spaces": [SPACE] * 51}),
        400,
        "too_many_spaces",
    )
    # the published validation answer is the one shape too
    op = schema["paths"]["/x402/chat"]["post"]["responses"]["422"]
    ref = op["content"]["application/json"]["schema"]["$ref"].rsplit("/", 1)[1]
    assert set(schema["components"]["schemas"][ref]["required"]) == {"error", "message"}


async def test_a_question_of_control_characters_is_refused_before_any_402(
    api: httpx.AsyncClient,
) -> None:
    for question in ("\x00\x01\x1b", "\u200b\u200e \t\n", "\x7f"):
        r = await api.post("/x402/chat", json={"question": question, "spaces": [SPACE]})
        _shape(r, 400, "empty_question")
        assert "PAYMENT-REQUIRED" not in r.headers
