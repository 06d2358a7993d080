"""Readiness of the parts of this process that talk to the outside (bots, RPC)."""

from __future__ import annotations

_connected: dict[str, bool] = {}


def set_connected(name: str, connected: bool) -> None:
    """Adapters call this when they connect to (or lose) their platform."""
    _connected[name] = connected


def adapters() -> dict[str, bool]:
    return dict(_connected)


def forget(name: str) -> None:
    """An adapter that stopped (process shutting down) no longer counts for readiness."""
    _connected.pop(name, None)
