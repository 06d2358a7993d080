"""Reading the chain with web3: receipts, confirmations, ``Transfer`` and ``AuthorizationUsed``
logs of the configured token. Nothing here writes to the chain."""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Any

from eth_utils import keccak
from web3 import AsyncHTTPProvider, AsyncWeb3

from core.config import PaymentSettings

TRANSFER_TOPIC = "0x" + keccak(text="Transfer(address,address,uint256)").hex()
AUTH_USED_TOPIC = "0x" + keccak(text="AuthorizationUsed(address,bytes32)").hex()


class ChainUnavailable(RuntimeError):
    """The RPC endpoint did not answer (or answered for another chain): retry later."""


@dataclass(frozen=True)
class TransferLog:
    transaction_hash: str
    log_index: int
    block_number: int
    token: str
    sender: str
    recipient: str
    value: int


@dataclass(frozen=True)
class TxCheck:
    """A transaction's state: ``status`` is ok | pending | reverted | unconfirmed | not_found."""

    status: str
    transfers: list[TransferLog]
    block_number: int | None = None
    confirmations: int = 0
    tx_from: str | None = None  # who sent the transaction (a relayer, for x402 settlements)


def _addr(topic: Any) -> str:
    raw = bytes(topic)
    return "0x" + raw[-20:].hex()


def _hex(value: Any) -> str:
    if isinstance(value, str):
        return value.lower() if value.startswith("0x") else "0x" + value.lower()
    return "0x" + bytes(value).hex()


def normalize_tx_hash(text: str) -> str:
    h = text.strip().lower()
    if not h.startswith("0x"):
        h = "0x" + h
    if not re.fullmatch(r"0x[0-9a-f]{64}", h):
        raise ValueError("a transaction hash is 0x followed by 64 hex digits")
    return h


class ChainReader:
    def __init__(self, settings: PaymentSettings, timeout: float = 10.0) -> None:
        self.settings = settings
        # a CAIP-2 id has one colon ("eip155:8453"): any maxsplit reads it alike
        self.chain_id = int(settings.network.split(":", 1)[1])  # pragma: no mutate
        self.token = settings.token_address.lower()
        self.w3 = AsyncWeb3(
            AsyncHTTPProvider(settings.rpc_url, request_kwargs={"timeout": timeout})
        )

    async def _call(self, coro: Any) -> Any:
        try:
            return await coro
        except Exception as exc:  # any transport failure: the node is unreachable
            if type(exc).__name__ in ("TransactionNotFound", "BlockNotFound"):
                raise
            raise ChainUnavailable(f"RPC {type(exc).__name__}") from exc

    async def block_number(self) -> int:
        return int(await self._call(self.w3.eth.block_number))

    def _parse_transfer(self, log: Any) -> TransferLog | None:
        topics = log["topics"]
        if (
            len(topics) != 3
            or _hex(topics[0]) != TRANSFER_TOPIC
            or str(log["address"]).lower() != self.token
        ):
            return None
        return TransferLog(
            transaction_hash=_hex(log["transactionHash"]),
            log_index=int(log["logIndex"]),
            block_number=int(log["blockNumber"]),
            token=str(log["address"]).lower(),
            sender=_addr(topics[1]),
            recipient=_addr(topics[2]),
            value=int.from_bytes(bytes(log["data"]), "big") if log["data"] else 0,
        )

    async def check_transaction(self, tx_hash: str) -> TxCheck:
        """Status, confirmations and the token's Transfer logs of one transaction."""
        from web3.exceptions import TransactionNotFound

        try:
            receipt = await self._call(self.w3.eth.get_transaction_receipt(tx_hash))  # type: ignore[arg-type]
        except TransactionNotFound:
            try:
                await self._call(self.w3.eth.get_transaction(tx_hash))  # type: ignore[arg-type]
            except TransactionNotFound:
                return TxCheck("not_found", [])
            return TxCheck("pending", [])
        if int(receipt["status"]) != 1:
            return TxCheck("reverted", [], int(receipt["blockNumber"]))
        block = int(receipt["blockNumber"])
        conf = await self.block_number() - block + 1
        transfers = [t for t in map(self._parse_transfer, receipt["logs"]) if t]
        status = "ok" if conf >= self.settings.confirmations else "unconfirmed"
        return TxCheck(status, transfers, block, conf, str(receipt["from"]).lower())

    async def transfers_to(self, pay_to: str, from_block: int, to_block: int) -> list[TransferLog]:
        topic_to = "0x" + "0" * 24 + pay_to.lower().removeprefix("0x")
        logs = await self._call(
            self.w3.eth.get_logs(
                {
                    "address": AsyncWeb3.to_checksum_address(self.token),
                    "fromBlock": from_block,
                    "toBlock": to_block,
                    "topics": [TRANSFER_TOPIC, None, topic_to],  # type: ignore[list-item]
                }
            )
        )
        return [t for t in map(self._parse_transfer, logs) if t]

    async def authorization_tx(
        self, authorizer: str, nonce: str, from_block: int, to_block: int
    ) -> str | None:
        """The transaction that used an EIP-3009 authorization (its AuthorizationUsed log)."""
        topic_from = "0x" + "0" * 24 + authorizer.lower().removeprefix("0x")
        logs = await self._call(
            self.w3.eth.get_logs(
                {
                    "address": AsyncWeb3.to_checksum_address(self.token),
                    "fromBlock": from_block,
                    "toBlock": to_block,
                    "topics": [AUTH_USED_TOPIC, topic_from, nonce.lower()],  # type: ignore[list-item]
                }
            )
        )
        return _hex(logs[0]["transactionHash"]) if logs else None


_READERS: dict[tuple[str, str, str, int], ChainReader] = {}


def reader_for_settings(settings: PaymentSettings) -> ChainReader:
    """One reader (one HTTP session pool) per chain configuration per process."""
    key = (settings.rpc_url, settings.network, settings.token_address, settings.confirmations)
    r = _READERS.get(key)
    if r is None:
        r = _READERS[key] = ChainReader(settings)
    return r
