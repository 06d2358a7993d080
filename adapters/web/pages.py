"""Shared bits of the browser pages: templates, static files, security headers, JSON bodies."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

from fastapi import Request
from fastapi.responses import HTMLResponse, JSONResponse, Response
from fastapi.staticfiles import StaticFiles
from fastapi.templating import Jinja2Templates

from core.results import Transcript
from core.transcripts import FORMATS

HERE = Path(__file__).parent
templates = Jinja2Templates(directory=str(HERE / "templates"))
templates.env.filters["utc"] = lambda dt: dt.strftime("%Y-%m-%d %H:%M UTC")


def hms(seconds: float | int | None) -> str:
    """1:02:03 or 2:03 (a duration or a timestamp in a Space)."""
    if seconds is None:
        return "unknown"
    m, s = divmod(int(seconds), 60)
    h, m = divmod(m, 60)
    return f"{h}:{m:02d}:{s:02d}" if h else f"{m}:{s:02d}"


templates.env.filters["hms"] = hms
static_files = StaticFiles(directory=str(HERE / "static"))
MAX_PAGE_BODY = 16_384  # a signed authorization or SIWE message is well under 2 KB

# Own files only: no CDN, no inline script, nothing fetched from elsewhere.
SECURITY_HEADERS = {
    "Content-Security-Policy": (
        "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
        "connect-src 'self'; form-action 'self'; base-uri 'none'; frame-ancestors 'none'"
    ),
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}


def page(request: Request, name: str, status_code: int = 200, **context: Any) -> HTMLResponse:
    ctx = getattr(request.app.state, "ctx", None)
    # every page of a test-mode server says so (base.html's ribbon)
    context.setdefault("test_mode", bool(ctx and ctx.settings.payments.test_mode))
    resp = templates.TemplateResponse(request, name, context, status_code=status_code)
    resp.headers.update(SECURITY_HEADERS)
    return resp


def message_page(request: Request, title: str, message: str, status: int) -> HTMLResponse:
    return page(request, "message.html", status_code=status, title=title, message=message)


def json_response(data: dict[str, Any], status: int = 200) -> JSONResponse:
    return JSONResponse(data, status, headers={"Cache-Control": "no-store"})


TOO_LARGE = "the body is larger than"


async def read_json(request: Request, limit: int = MAX_PAGE_BODY) -> dict[str, Any] | str:
    """The request's JSON object, or why not (a phrase: oversized, unsized, not a JSON object).
    Only ``application/json`` (which a cross-site form cannot send without CORS consent)."""
    if request.headers.get("content-type", "").split(";")[0].strip() != "application/json":
        return "the body must be sent as application/json"
    length = request.headers.get("content-length")
    if length is None or not length.isdigit():
        return "the body needs a Content-Length"
    if int(length) > limit:
        return f"{TOO_LARGE} {limit} bytes"
    raw = await request.body()
    if len(raw) > limit:
        return f"{TOO_LARGE} {limit} bytes"
    try:
        data = json.loads(raw)
    except ValueError:
        return "the body is not JSON"
    return data if isinstance(data, dict) else "the body is not a JSON object"


def document_response(t: Transcript, filename: str, headers: dict[str, str] | None) -> Response:
    """A transcript document as a download (its content comes from the database)."""
    return Response(
        t.content,
        media_type=FORMATS[t.format],
        headers={**(headers or {}), "Content-Disposition": f'attachment; filename="{filename}"'},
    )
