"""x402 "exact" verification and settlement through the official ``x402`` package.

The package does the EIP-712 / EIP-3009 checks (signature, payer, recipient, token, chain,
amount, validity window, unused nonce, balance, simulation); this module only wires its
resource server to a facilitator (in-process with the relayer key, or a remote URL) and
turns its answers into plain values. Its calls are blocking, so they run in a thread.
"""

from __future__ import annotations

import asyncio
import threading
from dataclasses import dataclass
from typing import Any, Protocol

from x402 import x402FacilitatorSync, x402ResourceServerSync
from x402.mechanisms.evm.exact import ExactEvmServerScheme, register_exact_evm_facilitator
from x402.mechanisms.evm.signers import FacilitatorWeb3Signer
from x402.schemas import (
    PaymentPayload,
    PaymentRequired,
    PaymentRequirements,
    ResourceConfig,
    ResourceInfo,
    SettleResponse,
)

from core.config import PaymentSettings, Secrets

SCHEME = "exact"


@dataclass(frozen=True)
class VerifyResult:
    ok: bool
    payer: str | None
    reason: str | None = None
    message: str | None = None


@dataclass(frozen=True)
class SettleResult:
    ok: bool
    transaction: str | None
    payer: str | None
    reason: str | None = None
    message: str | None = None
    raw: SettleResponse | None = None


class PaymentGateway(Protocol):
    """Verifies and settles x402 payloads against requirements we build."""

    def requirements(self, amount_units: int) -> PaymentRequirements: ...

    def payment_required(
        self, reqs: PaymentRequirements, resource: ResourceInfo | None, error: str | None
    ) -> PaymentRequired: ...

    async def verify(self, payload: PaymentPayload, reqs: PaymentRequirements) -> VerifyResult: ...

    async def settle(self, payload: PaymentPayload, reqs: PaymentRequirements) -> SettleResult: ...


class GatewayUnavailable(RuntimeError):
    """No facilitator: neither a relayer key nor a facilitator URL is configured."""


class X402Gateway:
    """The real gateway: ``x402ResourceServerSync`` + ``ExactEvmServerScheme`` + facilitator."""

    def __init__(self, settings: PaymentSettings, relayer_key: str | None) -> None:
        self.settings = settings
        if settings.facilitator_url:
            from x402.http import FacilitatorConfig, HTTPFacilitatorClientSync

            facilitator: Any = HTTPFacilitatorClientSync(
                FacilitatorConfig(url=settings.facilitator_url)
            )
        elif relayer_key:
            facilitator = x402FacilitatorSync()
            register_exact_evm_facilitator(
                facilitator,
                FacilitatorWeb3Signer(private_key=relayer_key, rpc_url=settings.rpc_url),
                networks=settings.network,
                # re-simulate at settle time: a spent or bad authorization never burns gas
                simulate_in_settle=True,
            )
        else:
            raise GatewayUnavailable(
                "payments need SPACESCRIBE_RELAYER_KEY or payments.facilitator_url"
            )
        if not settings.pay_to:
            raise GatewayUnavailable("payments.pay_to is not set")
        self.server = x402ResourceServerSync(facilitator)
        self.server.register(settings.network, ExactEvmServerScheme())  # type: ignore[arg-type]
        self.server.initialize()
        # one settlement at a time per process: the relayer's account nonce is shared
        self._settle_lock = threading.Lock()

    def requirements(self, amount_units: int) -> PaymentRequirements:
        s = self.settings
        cfg = ResourceConfig(
            scheme=SCHEME,
            pay_to=s.pay_to,
            network=s.network,
            price={
                "amount": str(amount_units),
                "asset": s.token_address,
                "extra": {"name": s.token_name, "version": s.token_version},
            },
            max_timeout_seconds=s.invoice_ttl_seconds,
        )
        return self.server.build_payment_requirements(cfg)[0]

    def payment_required(
        self, reqs: PaymentRequirements, resource: ResourceInfo | None, error: str | None
    ) -> PaymentRequired:
        return self.server.create_payment_required_response([reqs], resource, error)

    async def verify(self, payload: PaymentPayload, reqs: PaymentRequirements) -> VerifyResult:
        r = await asyncio.to_thread(self.server.verify_payment, payload, reqs)
        return VerifyResult(r.is_valid, r.payer, r.invalid_reason, r.invalid_message)

    async def settle(self, payload: PaymentPayload, reqs: PaymentRequirements) -> SettleResult:
        def _settle() -> SettleResponse:
            with self._settle_lock:
                return self.server.settle_payment(payload, reqs)

        r = await asyncio.to_thread(_settle)
        return SettleResult(
            r.success, r.transaction or None, r.payer, r.error_reason, r.error_message, r
        )


_GATEWAYS: dict[tuple[str, ...], PaymentGateway] = {}


def gateway_for(settings: PaymentSettings, secrets: Secrets) -> PaymentGateway:
    """One gateway per configuration per process (initialisation asks the facilitator)."""
    key = secrets.relayer_key.get_secret_value() if secrets.relayer_key is not None else None
    cache_key = (
        settings.network,
        settings.rpc_url,
        settings.token_address,
        settings.pay_to,
        settings.facilitator_url,
        settings.token_name,
        settings.token_version,
        str(settings.invoice_ttl_seconds),
        str(hash(key)),
    )
    gw = _GATEWAYS.get(cache_key)
    if gw is None:
        gw = X402Gateway(settings, key)
        _GATEWAYS[cache_key] = gw
    return gw
