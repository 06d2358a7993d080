"""A hosted x402 facilitator on a socket (``payments.facilitator_url``): the three routes the
official ``HTTPFacilitatorClient`` calls — ``GET /supported``, ``POST /verify``,
``POST /settle`` — answered by the x402 package's own facilitator settling on anvil.

It runs in a thread of its own: the resource server asks ``/supported`` synchronously while
it is built, from the event loop's thread."""

from __future__ import annotations

import json
import threading
from collections.abc import Iterator
from contextlib import contextmanager
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import Any

from x402 import x402FacilitatorSync
from x402.mechanisms.evm import FacilitatorWeb3Signer
from x402.mechanisms.evm.exact import register_exact_evm_facilitator
from x402.schemas import PaymentPayload, PaymentRequirements


class Facilitator:
    def __init__(self, relayer_key: str, rpc_url: str, network: str) -> None:
        self.x402 = x402FacilitatorSync()
        register_exact_evm_facilitator(
            self.x402,
            FacilitatorWeb3Signer(private_key=relayer_key, rpc_url=rpc_url),
            networks=network,
            simulate_in_settle=True,
        )
        self.calls: list[str] = []  # "GET /supported", "POST /verify", …

    def answer(self, method: str, path: str, body: dict[str, Any]) -> Any:
        self.calls.append(f"{method} {path}")
        if (method, path) == ("GET", "/supported"):
            return self.x402.get_supported()
        payload = PaymentPayload.model_validate(body["paymentPayload"])
        reqs = PaymentRequirements.model_validate(body["paymentRequirements"])
        if (method, path) == ("POST", "/verify"):
            return self.x402.verify(payload, reqs)
        if (method, path) == ("POST", "/settle"):
            return self.x402.settle(payload, reqs)
        raise LookupError(path)


@contextmanager
def serve_facilitator(f: Facilitator) -> Iterator[str]:
    """Yield the facilitator's base URL while it listens on 127.0.0.1."""

    class Handler(BaseHTTPRequestHandler):
        def _reply(self, method: str) -> None:
            size = int(self.headers.get("Content-Length") or 0)
            body = json.loads(self.rfile.read(size) or b"{}")
            try:
                out = f.answer(method, self.path, body)
                data, status = out.model_dump_json(by_alias=True, exclude_none=True), 200
            except LookupError:
                data, status = '{"error": "not found"}', 404
            raw = data.encode()
            self.send_response(status)
            self.send_header("Content-Type", "application/json")
            self.send_header("Content-Length", str(len(raw)))
            self.end_headers()
            self.wfile.write(raw)

        def do_GET(self) -> None:  # noqa: N802 (the stdlib's name)
            self._reply("GET")

        def do_POST(self) -> None:  # noqa: N802
            self._reply("POST")

        def log_message(self, *args: Any) -> None:
            pass

    httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
    thread = threading.Thread(target=httpd.serve_forever, daemon=True)
    thread.start()
    try:
        yield f"http://127.0.0.1:{httpd.server_address[1]}"
    finally:
        httpd.shutdown()
        httpd.server_close()
