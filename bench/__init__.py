"""Benchmarks: `python -m bench` runs them all; `python -m bench.<name>` runs one.

They print figures and ratios measured side by side in one run (these machines are shared
and noisy); they are not timed tests.
"""
