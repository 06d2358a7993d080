"""Bazaar discovery (x402 ``bazaar`` extension) on every paid route: the 402 answers declare
how to call the route, a facilitator's validation accepts it, and ``/openapi.json`` agrees."""

from __future__ import annotations

import base64
import json
from typing import Any

import httpx
import pytest
from x402.extensions.bazaar import (
    BAZAAR,
    validate_and_extract,
    validate_discovery_extension,
    validate_discovery_extension_spec,
)
from x402.schemas import PaymentRequired

from bot.wiring import web_app
from core.context import Context

SPACE = "1RDxlAoOeQRKL"
PAID = [
    ("POST", "/x402/transcribe", {"space": SPACE}),
    ("POST", "/x402/unlock", {"space": SPACE}),
    ("POST", "/x402/chat", {"question": "what was said?", "spaces": [SPACE]}),
    ("GET", f"/api/spaces/{SPACE}/transcript", None),
]


def _resolve(schema: dict[str, Any], spec: dict[str, Any]) -> dict[str, Any]:
    ref = schema.get("$ref")
    if ref is None:
        return schema
    return spec["components"]["schemas"][ref.rsplit("/", 1)[1]]


def _comparable(schema: dict[str, Any]) -> dict[str, Any]:
    """What a caller must know of a JSON schema: properties, types, limits, required."""
    keep = ("type", "minLength", "maxLength", "minItems", "maxItems", "items", "enum")
    props = {
        name: {k: v for k, v in p.items() if k in keep}
        for name, p in schema.get("properties", {}).items()
    }
    return {
        "properties": props,
        "required": sorted(schema.get("required", [])),
        "additionalProperties": schema.get("additionalProperties", True),
    }


async def _required(web: httpx.AsyncClient, method: str, path: str, body: Any) -> PaymentRequired:
    r = await web.request(method, path, json=body)
    assert r.status_code == 402, r.text
    header = PaymentRequired.model_validate(
        json.loads(base64.b64decode(r.headers["PAYMENT-REQUIRED"]))
    )
    assert header == PaymentRequired.model_validate(r.json())  # body and header agree
    return header


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_every_paid_route_declares_bazaar_discovery_that_matches_openapi(
    db_url: str,
    pay_ctx: Context,
) -> None:
    app = web_app(pay_ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080"
    ) as web:
        spec = (await web.get("/openapi.json")).json()
        for method, path, body in PAID:
            pr = await _required(web, method, path, body)
            ext = (pr.extensions or {})[BAZAAR.key]
            # what a facilitator checks before listing a resource
            assert validate_discovery_extension(ext).valid, (path, ext)
            assert validate_discovery_extension_spec(ext).valid, (path, ext)
            assert pr.resource is not None
            assert pr.resource.service_name == "spacescribe" and pr.resource.tags
            info = ext["info"]["input"]
            assert info["type"] == "http" and info["method"] == method
            route = next(p for p in spec["paths"] if p.replace("{space_id}", SPACE) == path)
            op = spec["paths"][route][method.lower()]
            assert "402" in op["responses"], (path, op["responses"])
            if method == "POST":
                declared = ext["schema"]["properties"]["input"]["properties"]["body"]
                published = _resolve(
                    op["requestBody"]["content"]["application/json"]["schema"], spec
                )
                assert info["bodyType"] == "json"
                assert _comparable(declared) == _comparable(published), path
                # the example body is one the route accepts (it answered 402, not 4xx)
                again = await web.request(method, path, json=info["body"])
                assert again.status_code == 402, again.text
            else:
                params = {p["name"]: p for p in op["parameters"] if p["in"] == "query"}
                declared = ext["schema"]["properties"]["input"]["properties"]["queryParams"]
                assert set(declared["properties"]) == {"format"} <= set(params)
                assert info["pathParams"] == {"space_id": SPACE}
                assert ext["routeTemplate"] == "/api/spaces/:space_id/transcript"
            assert ext["info"]["output"]["example"]["paid"] is True


@pytest.mark.parametrize("db_url", ["sqlite"], indirect=True)
async def test_a_facilitator_extracts_the_resource_from_a_paid_request(
    db_url: str, pay_ctx: Context, chain, fresh_payer
) -> None:  # type: ignore[no-untyped-def]
    """The client copies the declared extensions into its payment (the official client
    does); the facilitator's ``validate_and_extract`` then lists the route."""
    from tests.payments.conftest import make_client

    app = web_app(pay_ctx)
    async with httpx.AsyncClient(
        transport=httpx.ASGITransport(app=app), base_url="http://127.0.0.1:8080"
    ) as web:
        pr = await _required(web, "POST", "/x402/chat", PAID[2][2])
    payload = make_client(chain, fresh_payer).create_payment_payload(pr)
    assert BAZAAR.key in (payload.extensions or {})
    got = validate_and_extract(payload.extensions[BAZAAR.key])
    assert got.valid, got.errors
    assert got.info is not None
