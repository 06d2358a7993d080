"""Figures measured by the drills, printed in pytest's terminal summary.

A drill calls ``record("sigkill", "20 kills, 20 jobs completed once, 0 stuck")`` once it has
checked what it claims; ``tests/conftest.py`` prints every recorded line at the end of the run.
"""

from __future__ import annotations

FIGURES: list[tuple[str, str]] = []


def record(drill: str, figures: str) -> None:
    FIGURES.append((drill, figures))
