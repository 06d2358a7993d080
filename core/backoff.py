"""Exponential backoff, the one formula of the queue's retries and the outbox's deliveries."""

from __future__ import annotations


def exponential(failures: int, base: float, cap: float) -> float:
    """Seconds to wait after ``failures`` failed tries: base × 2^(failures − 1), at most
    ``cap``; nothing before the first failure."""
    if failures <= 0:
        return 0.0
    return float(min(cap, base * 2 ** (failures - 1)))
