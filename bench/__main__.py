"""Run the benchmarks of this package (each exposes ``main()``): all of them, or those named.

``python -m bench`` runs every one; ``python -m bench payments queue`` runs those two. Each
benchmark runs with its own defaults: while it runs, ``sys.argv`` holds only its name, so
the names given here are never read as its arguments (``python -m bench.<name> …`` passes
arguments to one benchmark).
"""

from __future__ import annotations

import importlib
import pkgutil
import sys
import time

import bench


def available() -> list[str]:
    return sorted(
        m.name for m in pkgutil.iter_modules(bench.__path__) if not m.name.startswith("_")
    )


def main(argv: list[str]) -> int:
    known = available()
    unknown = [n for n in argv if n not in known]
    if unknown:
        print(f"unknown benchmark {', '.join(unknown)}; choose from: {', '.join(known)}")
        return 2
    names = argv or known
    failed = []
    saved = sys.argv
    for name in names:
        print(f"\n=== bench.{name} ===", flush=True)
        t0 = time.perf_counter()
        sys.argv = [f"bench.{name}"]  # the benchmark's own command line: no arguments
        try:
            importlib.import_module(f"bench.{name}").main()
        except Exception as exc:  # report and go on with the others
            failed.append(name)
            print(f"bench.{name} failed: {type(exc).__name__}: {exc}", flush=True)
        finally:
            sys.argv = saved
        print(f"(bench.{name}: {time.perf_counter() - t0:.1f} s)", flush=True)
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
