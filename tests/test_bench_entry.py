"""``python -m bench <name>``: the names select benchmarks and are never read as a
benchmark's own arguments (issue 14: ``python -m bench payments`` failed on int("payments"))."""

from __future__ import annotations

import subprocess
import sys

import pytest

import bench.payments
from bench.__main__ import main
from core.config import ROOT


def test_named_benchmark_runs_with_its_own_defaults(monkeypatch: pytest.MonkeyPatch) -> None:
    ran: list[int] = []

    async def run(n: int) -> None:  # the benchmark's body; its argument parsing is real
        ran.append(n)

    monkeypatch.setattr(bench.payments, "run", run)
    monkeypatch.setattr(sys, "argv", ["bench", "payments"])
    assert main(["payments"]) == 0
    assert ran == [40] and sys.argv == ["bench", "payments"]


def test_unknown_benchmark_is_named() -> None:
    out = subprocess.run(
        [sys.executable, "-m", "bench", "paymnets"], cwd=ROOT, capture_output=True, text=True
    )
    assert out.returncode == 2
    assert "unknown benchmark paymnets; choose from: chat, " in out.stdout
    assert "payments, pipeline" in out.stdout
