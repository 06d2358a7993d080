"""Fault drills of issue 9: SIGKILLs, outages, concurrent payments, bad input, access, secrets.

Each drill records its measured figures with :func:`tests.drills.figures.record`; the run
prints them at the end (``drill figures`` section), so ``make test`` shows them every time.
"""
