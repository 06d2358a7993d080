"""x402 Bazaar discovery: how each paid route is called, declared in its 402 answers.

Facilitators that run a catalogue read ``extensions.bazaar`` (``x402.extensions.bazaar``:
input schema, body type, output example) and the service metadata on ``resource``
(``serviceName``, ``tags``), so agents can find spacescribe and call it without being told
the routes. The input schemas come from the same pydantic models and configured limits as
``/openapi.json`` (``tests/payments/test_x402_discovery.py`` compares them); the examples and
service metadata are the core's (``core/service/listing.py``), shared with the MCP tools.
"""

from __future__ import annotations

from types import SimpleNamespace
from typing import Any

from pydantic import BaseModel
from x402.extensions.bazaar import BAZAAR, OutputConfig, declare_discovery_extension
from x402.extensions.bazaar.server import bazaar_resource_server_extension

from core.config import Settings
from core.service.listing import EXAMPLES, OUTPUTS

TRANSCRIPT_ROUTE = "/api/spaces/:space_id/transcript"


def body_schema(model: type[BaseModel], settings: Settings) -> dict[str, Any]:
    """The JSON body ``model`` accepts, with the limits the route enforces from config."""
    schema = model.model_json_schema()
    props = schema.get("properties", {})
    if "question" in props:
        props["question"]["maxLength"] = settings.chat.max_question_chars
    if "spaces" in props:
        props["spaces"]["maxItems"] = settings.chat.max_spaces
    return schema


def _enrich(ext: dict[str, Any], method: str, path: str, pattern: str | None) -> dict[str, Any]:
    """The HTTP method (and path parameters) added as x402's own server extension does."""
    transport = SimpleNamespace(
        method=method,
        route_pattern=pattern,
        adapter=SimpleNamespace(get_path=lambda: path),
    )
    return {
        BAZAAR.key: bazaar_resource_server_extension.enrich_declaration(ext[BAZAAR.key], transport)
    }


def for_body(kind: str, model: type[BaseModel], settings: Settings, path: str) -> dict[str, Any]:
    """``extensions.bazaar`` of a POST route selling ``kind`` with a JSON body ``model``."""
    ext = declare_discovery_extension(
        input=EXAMPLES[kind],
        input_schema=body_schema(model, settings),
        body_type="json",
        output=OutputConfig(example=OUTPUTS[kind]),
    )
    return _enrich(ext, "POST", path, None)


def for_transcript(path: str) -> dict[str, Any]:
    """``extensions.bazaar`` of ``GET /api/spaces/{space_id}/transcript`` (paid, or SIWX)."""
    ext = declare_discovery_extension(
        input={"format": "md"},
        input_schema={
            "type": "object",
            "properties": {"format": {"type": "string", "enum": ["md", "json", "srt", "vtt"]}},
        },
        path_params_schema={
            "properties": {"space_id": {"type": "string", "pattern": "^[A-Za-z0-9]{13}$"}},
            "required": ["space_id"],
        },
        output=OutputConfig(example=OUTPUTS["transcription"]),
    )
    return _enrich(ext, "GET", path, TRANSCRIPT_ROUTE)
